//! brook-wire: the Kafka wire format, without I/O.
//!
//! - [`frame`]: splits a byte stream into length-prefixed frames.
//! - [`request`]: peeks at and decodes request headers and bodies.
//! - [`response`]: encodes responses (and, for clients, requests) into frames; decodes responses.
//! - [`batch`]: inspects, validates and patches v2 record batches in place.
//! - [`Error`]: the one error type every function here returns.

pub mod batch;
pub mod error;
pub mod frame;
pub mod request;
pub mod response;

pub use error::Error;

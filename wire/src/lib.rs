//! brook-wire: the Kafka wire format, without I/O.
//!
//! - [`frame`]: splits a byte stream into length-prefixed frames.
//! - [`request`]: peeks at and decodes request headers and bodies.
//! - [`response`]: encodes responses (and, for clients, requests) into frames; decodes responses.
//! - [`batch`]: inspects, validates (records included, as Kafka's log validator does, with
//!   decompression bounded) and patches v2 record batches in place.
//! - [`consumer_protocol`]: reads the topics out of a consumer group member's subscription.
//! - [`Error`]: the one error type every function here returns.
//! - [`fuzzing`] (feature `fuzzing`, and in tests): the fuzz targets of every decoder above that
//!   a stranger's bytes reach.

pub mod batch;
pub mod consumer_protocol;
mod error;
pub mod frame;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod request;
pub mod response;

pub use error::Error;

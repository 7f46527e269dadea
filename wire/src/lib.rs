//! brook-wire

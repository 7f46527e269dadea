//! brook-actors

//! brook-storage

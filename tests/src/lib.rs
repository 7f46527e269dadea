//! brook-tests: helpers for cross-process tests.

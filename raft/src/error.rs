//! The crate's one error type.

use std::time::Duration;

use crate::codes;
use crate::command::Rejection;
use crate::typ::{Node, NodeId, RaftError};

type InitializeError = openraft::error::InitializeError<NodeId, Node>;

/// Everything that can go wrong in `brook-raft`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state machine refused the command; the state is unchanged. Carries a Kafka code.
    #[error("{0}")]
    Rejected(Rejection),
    /// No leader is known (an election is running, or this node is cut off).
    #[error("no Raft leader is known")]
    NoLeader,
    /// The operation did not finish in time; it may still take effect.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A frame on the Raft port announced more bytes than allowed.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    /// A peer answered with something other than the reply to the request sent.
    #[error("unexpected reply from node {0}")]
    UnexpectedReply(NodeId),
    /// A peer on the Raft port failed authentication, or refused ours (see [`crate::auth`]).
    #[error("raft port authentication: {0}")]
    Auth(String),
    /// A peer sent a term, index or node id outside what a real cluster can reach.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The local Raft node stopped or failed.
    #[error("raft: {0}")]
    Raft(Box<openraft::error::Fatal<NodeId>>),
    /// A write failed inside Raft (for example a membership change conflict).
    #[error("raft write: {0}")]
    Write(String),
    /// Initializing the cluster failed.
    #[error("raft initialize: {0}")]
    Initialize(Box<RaftError<InitializeError>>),
    /// openraft's storage error, from the log or state machine store.
    #[error("raft storage: {0}")]
    Storage(Box<openraft::StorageError<NodeId>>),
    #[error("raft config: {0}")]
    Config(Box<openraft::ConfigError>),
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("encoding: {0}")]
    Codec(#[from] bincode::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The Kafka error code to answer a client with when a metadata write failed this way:
    /// a rejection's own code, `NOT_CONTROLLER` (retriable) when there is no usable leader
    /// (none known, unreachable, or stopping), `REQUEST_TIMED_OUT` for timeouts,
    /// `UNKNOWN_SERVER_ERROR` otherwise.
    pub fn kafka_code(&self) -> i16 {
        match self {
            Error::Rejected(r) => r.code,
            Error::NoLeader
            | Error::Raft(_)
            | Error::Io(_)
            | Error::Auth(_)
            | Error::UnexpectedReply(_) => codes::NOT_CONTROLLER,
            Error::Timeout(_) => codes::REQUEST_TIMED_OUT,
            _ => codes::UNKNOWN_SERVER_ERROR,
        }
    }
}

// openraft's errors are large; boxed so every `Result` of this crate stays small.
impl From<openraft::error::Fatal<NodeId>> for Error {
    fn from(e: openraft::error::Fatal<NodeId>) -> Self {
        Error::Raft(Box::new(e))
    }
}

impl From<RaftError<InitializeError>> for Error {
    fn from(e: RaftError<InitializeError>) -> Self {
        Error::Initialize(Box::new(e))
    }
}

impl From<openraft::ConfigError> for Error {
    fn from(e: openraft::ConfigError) -> Self {
        Error::Config(Box::new(e))
    }
}

impl From<openraft::StorageError<NodeId>> for Error {
    fn from(e: openraft::StorageError<NodeId>) -> Self {
        Error::Storage(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

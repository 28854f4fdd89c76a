//! The store error type.

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// No message at that sequence / matching the filter.
    #[error("no message found")]
    NotFound,
    /// The sequence lies between first and last but its message was deleted.
    #[error("message deleted")]
    Deleted,
    #[error("maximum messages exceeded")]
    MaxMsgs,
    #[error("maximum bytes exceeded")]
    MaxBytes,
    #[error("maximum messages per subject exceeded")]
    MaxMsgsPerSubject,
    #[error("message size exceeds maximum allowed")]
    MaxMsgSize,
    #[error("storage resources exceeded")]
    StoreFull,
    /// `store_at` with a sequence not greater than the last one.
    #[error("expected sequence does not match store")]
    SequenceMismatch,
    #[error("store is closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt store: {0}")]
    Corrupt(String),
}

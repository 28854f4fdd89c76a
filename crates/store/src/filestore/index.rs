//! Where a live message lives on disk: the `T` that FileStore stores in the shared `Core` index.

/// Block number, byte offset and record length of one message record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub blk: u32,
    pub len: u32,
    pub off: u64,
}

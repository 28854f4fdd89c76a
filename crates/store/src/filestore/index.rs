//! Where a live message lives on disk: the `T` that FileStore stores in the shared `Core` index.

/// Block number, byte offset and record length of one message record. Offsets are u32:
/// a block rolls at `block_size` (capped below 2 GiB) and one record is under 1 GiB, so no
/// record starts past 3 GiB; 12 bytes instead of 16 per stored message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub blk: u32,
    pub len: u32,
    pub off: u32,
}

impl Loc {
    pub fn off(&self) -> u64 {
        u64::from(self.off)
    }
}

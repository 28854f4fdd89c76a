//! The wire encoding of Raft RPCs between peers: frames of
//! `version(1) kind(1) group(8) request-id(8) length(4) crc32c(4) payload`, all little-endian,
//! where the CRC covers the first 22 header bytes and the payload, and the payload is the RPC in
//! bincode (varint, size-limited). Many frames travel in one transport message (a batch is just
//! frames back to back), which is how thousands of groups share one channel per peer pair.
//! Decoding never panics and never allocates more than the input's size: anything malformed is
//! an error and the batch is dropped (Raft retries).

use serde::{Deserialize, Serialize};

use crate::types::{GroupId, PeerId, SnapshotMeta, TypeConfig, Vote};

/// Bumped on any incompatible change of the frame or of the RPC payloads (including an openraft
/// upgrade that changes its serialized types).
pub const WIRE_VERSION: u8 = 1;
const HEADER: usize = 26;
/// Bigger frames are refused (snapshots are summaries; bulk data moves by range copy).
pub const MAX_FRAME_PAYLOAD: usize = 64 << 20;

/// Whether a frame asks or answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Request = 0,
    Response = 1,
}

/// One RPC or its answer.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum Rpc {
    Append(openraft::raft::AppendEntriesRequest<TypeConfig>),
    AppendOk(openraft::raft::AppendEntriesResponse<PeerId>),
    Vote(openraft::raft::VoteRequest<PeerId>),
    VoteOk(openraft::raft::VoteResponse<PeerId>),
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        data: Vec<u8>,
    },
    SnapshotOk(openraft::raft::SnapshotResponse<PeerId>),
    /// Leader transfer: the receiver should start an election as soon as its peers will listen.
    TimeoutNow,
    /// The receiver could not serve the request (unknown group, shutting down, ...).
    Failed(String),
}

/// A decoded frame.
#[derive(Debug)]
pub struct Frame {
    pub kind: FrameKind,
    pub group: GroupId,
    pub request_id: u64,
    pub rpc: Rpc,
}

/// Why bytes from a peer were not a valid batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("truncated frame")]
    Truncated,
    #[error("unsupported wire version {0}")]
    Version(u8),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("frame payload of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("frame checksum mismatch")]
    Checksum,
    #[error("malformed RPC payload")]
    Payload,
}

fn opts(limit: usize) -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new().with_limit(limit as u64)
}

/// Appends one encoded frame to `out`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    use bincode::Options;
    let payload = opts(MAX_FRAME_PAYLOAD)
        .serialize(&frame.rpc)
        .unwrap_or_else(|_| {
            // Only an over-limit snapshot gets here; tell the peer instead of sending it.
            opts(MAX_FRAME_PAYLOAD)
                .serialize(&Rpc::Failed("frame too large".into()))
                .unwrap_or_default()
        });
    let start = out.len();
    out.push(WIRE_VERSION);
    out.push(frame.kind as u8);
    out.extend_from_slice(&frame.group.to_le_bytes());
    out.extend_from_slice(&frame.request_id.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[start..start + 22]), &payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Decodes the first frame of `buf`, returning it and the bytes it used.
pub fn decode(buf: &[u8]) -> Result<(Frame, usize), CodecError> {
    use bincode::Options;
    if buf.len() < HEADER {
        return Err(CodecError::Truncated);
    }
    if buf[0] != WIRE_VERSION {
        return Err(CodecError::Version(buf[0]));
    }
    let kind = match buf[1] {
        0 => FrameKind::Request,
        1 => FrameKind::Response,
        k => return Err(CodecError::Kind(k)),
    };
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let u32_at = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&buf[i..i + 4]);
        u32::from_le_bytes(b)
    };
    let group = u64_at(2);
    let request_id = u64_at(10);
    let len = u32_at(18) as usize;
    if len > MAX_FRAME_PAYLOAD {
        return Err(CodecError::TooLarge(len));
    }
    let crc = u32_at(22);
    let payload = buf.get(HEADER..HEADER + len).ok_or(CodecError::Truncated)?;
    if crc32c::crc32c_append(crc32c::crc32c(&buf[..22]), payload) != crc {
        return Err(CodecError::Checksum);
    }
    let rpc: Rpc = opts(len)
        .deserialize(payload)
        .map_err(|_| CodecError::Payload)?;
    Ok((
        Frame {
            kind,
            group,
            request_id,
            rpc,
        },
        HEADER + len,
    ))
}

/// Decodes every frame of a batch; the first bad frame fails the rest of the batch.
pub fn decode_batch(mut buf: &[u8]) -> Result<Vec<Frame>, CodecError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (f, used) = decode(buf)?;
        out.push(f);
        buf = &buf[used..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::raft::{AppendEntriesRequest, VoteRequest};
    use openraft::{CommittedLeaderId, EntryPayload};
    use proptest::prelude::*;

    use crate::types::{Entry, LogId, Payload};

    fn log_id(term: u64, node: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    type Spec = (
        u8,
        u64,
        u64,
        u64,
        Vec<(u64, Vec<u8>, bool)>,
        Vec<u8>,
        String,
    );

    /// Strategies need Clone values, the RPC types are not Clone: generate a recipe instead.
    fn rpc_strategy() -> impl Strategy<Value = Spec> {
        (
            0u8..5,
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(
                (
                    any::<u64>(),
                    proptest::collection::vec(any::<u8>(), 0..64),
                    any::<bool>(),
                ),
                0..8,
            ),
            proptest::collection::vec(any::<u8>(), 0..256),
            ".*",
        )
    }

    fn build((variant, term, node, commit, es, data, text): Spec) -> Rpc {
        match variant {
            0 => Rpc::Append(AppendEntriesRequest {
                vote: Vote::new_committed(term, node),
                prev_log_id: Some(log_id(term, node, commit)),
                entries: es
                    .into_iter()
                    .enumerate()
                    .map(|(i, (t, d, blank))| Entry {
                        log_id: log_id(t, node, i as u64),
                        payload: if blank {
                            EntryPayload::Blank
                        } else {
                            EntryPayload::Normal(Payload(vec![d]))
                        },
                    })
                    .collect(),
                leader_commit: Some(log_id(term, node, commit / 2)),
            }),
            1 => Rpc::Vote(VoteRequest {
                vote: Vote::new(term, node),
                last_log_id: Some(log_id(term, node, commit)),
            }),
            2 => Rpc::Snapshot {
                vote: Vote::new_committed(term, node),
                meta: SnapshotMeta {
                    last_log_id: Some(log_id(term, node, commit)),
                    last_membership: Default::default(),
                    snapshot_id: text,
                },
                data,
            },
            3 => Rpc::TimeoutNow,
            _ => Rpc::Failed(text),
        }
    }

    fn frame(kind: bool, group: u64, request_id: u64, rpc: Rpc) -> Frame {
        Frame {
            kind: if kind {
                FrameKind::Request
            } else {
                FrameKind::Response
            },
            group,
            request_id,
            rpc,
        }
    }

    proptest! {
        #[test]
        fn round_trip(kind: bool, group: u64, id: u64, spec in rpc_strategy()) {
            let f = frame(kind, group, id, build(spec));
            let mut buf = Vec::new();
            encode(&f, &mut buf);
            let (back, used) = decode(&buf).expect("decode");
            prop_assert_eq!(used, buf.len());
            prop_assert_eq!(back.kind, f.kind);
            prop_assert_eq!(back.group, group);
            prop_assert_eq!(back.request_id, id);
            // The RPC types have no PartialEq: equal re-encodings prove equal content.
            let mut again = Vec::new();
            encode(&back, &mut again);
            prop_assert_eq!(again, buf);
        }

        #[test]
        fn batches_round_trip(specs in proptest::collection::vec(rpc_strategy(), 0..6)) {
            let rpcs: Vec<Rpc> = specs.into_iter().map(build).collect();
            let mut buf = Vec::new();
            let n = rpcs.len();
            for (i, r) in rpcs.into_iter().enumerate() {
                encode(&frame(true, i as u64, i as u64, r), &mut buf);
            }
            let frames = decode_batch(&buf).expect("batch");
            prop_assert_eq!(frames.len(), n);
            for (i, f) in frames.iter().enumerate() {
                prop_assert_eq!(f.group, i as u64);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_batch(&bytes);
        }

        #[test]
        fn garbage_with_valid_checksum_never_panics(group: u64, payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            // A well-framed payload that is not a valid RPC must fail cleanly in bincode.
            let mut buf = vec![WIRE_VERSION, 0];
            buf.extend_from_slice(&group.to_le_bytes());
            buf.extend_from_slice(&1u64.to_le_bytes());
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            let crc = crc32c::crc32c_append(crc32c::crc32c(&buf), &payload);
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&payload);
            let _ = decode(&buf);
        }

        #[test]
        fn any_bit_flip_is_detected(spec in rpc_strategy(), pos: prop::sample::Index, bit in 0u8..8) {
            let mut buf = Vec::new();
            encode(&frame(true, 1, 2, build(spec)), &mut buf);
            let i = pos.index(buf.len());
            buf[i] ^= 1 << bit;
            prop_assert!(decode(&buf).is_err());
        }

        #[test]
        fn truncation_is_detected(spec in rpc_strategy(), cut: prop::sample::Index) {
            let mut buf = Vec::new();
            encode(&frame(false, 1, 2, build(spec)), &mut buf);
            let n = cut.index(buf.len());
            prop_assert!(decode(&buf[..n]).is_err());
        }
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut buf = Vec::new();
        encode(&frame(true, 1, 1, Rpc::TimeoutNow), &mut buf);
        buf[0] = 9;
        assert_eq!(decode(&buf).err(), Some(CodecError::Version(9)));
    }

    #[test]
    fn huge_length_is_refused_without_allocating() {
        let mut buf = vec![WIRE_VERSION, 0];
        buf.extend_from_slice(&[0; 16]);
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        assert!(matches!(decode(&buf), Err(CodecError::TooLarge(_))));
    }
}

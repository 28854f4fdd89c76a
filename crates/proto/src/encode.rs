//! The server -> client frames, appended into an outbound buffer.
//!
//! Delivery writes one `MSG`/`HMSG` frame per subscriber straight into that
//! subscriber's buffer; nothing here allocates beyond growing the buffer.

use bytes::{BufMut, BytesMut};

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";

/// Appends `MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n`.
#[inline]
pub fn msg(out: &mut BytesMut, subject: &[u8], sid: &[u8], reply: Option<&[u8]>, payload: &[u8]) {
    let mut len = itoa::Buffer::new();
    let len = len.format(payload.len()).as_bytes();
    out.reserve(
        subject.len()
            + sid.len()
            + reply.map_or(0, |r| r.len() + 1)
            + len.len()
            + payload.len()
            + 10,
    );
    out.put_slice(b"MSG ");
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if let Some(reply) = reply {
        out.put_slice(reply);
        out.put_u8(b' ');
    }
    out.put_slice(len);
    out.put_slice(b"\r\n");
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// Appends `HMSG <subject> <sid> [reply] <hdr size> <total size>\r\n<headers><payload>\r\n`.
#[inline]
pub fn hmsg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    headers: &[u8],
    payload: &[u8],
) {
    let mut hlen = itoa::Buffer::new();
    let hlen = hlen.format(headers.len()).as_bytes();
    let mut tlen = itoa::Buffer::new();
    let tlen = tlen.format(headers.len() + payload.len()).as_bytes();
    out.reserve(
        subject.len()
            + sid.len()
            + reply.map_or(0, |r| r.len() + 1)
            + hlen.len()
            + tlen.len()
            + headers.len()
            + payload.len()
            + 12,
    );
    out.put_slice(b"HMSG ");
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if let Some(reply) = reply {
        out.put_slice(reply);
        out.put_u8(b' ');
    }
    out.put_slice(hlen);
    out.put_u8(b' ');
    out.put_slice(tlen);
    out.put_slice(b"\r\n");
    out.put_slice(headers);
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// Appends `-ERR '<text>'\r\n`.
pub fn err(out: &mut BytesMut, text: &str) {
    out.put_slice(b"-ERR '");
    out.put_slice(text.as_bytes());
    out.put_slice(b"'\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let mut b = BytesMut::new();
        msg(&mut b, b"foo", b"1", None, b"hi");
        msg(&mut b, b"foo", b"1", Some(b"r"), b"");
        hmsg(&mut b, b"inbox.1", b"7", None, b"NATS/1.0 503\r\n\r\n", b"");
        err(&mut b, "Invalid Subject");
        assert_eq!(
            &b[..],
            &b"MSG foo 1 2\r\nhi\r\nMSG foo 1 r 0\r\n\r\nHMSG inbox.1 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n-ERR 'Invalid Subject'\r\n"[..]
        );
    }
}

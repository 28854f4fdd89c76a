//! workloads/objstore.rs — object store put/get throughput through the real
//! client (async-nats on a single-threaded tokio runtime), so the wire
//! traffic is exactly what applications produce: 128 KiB chunks published to
//! `$O.<bucket>.C.<nuid>` one acked publish at a time, then the rollup meta
//! message; a get reads the chunks through an ordered consumer and checks
//! the SHA-256 digest at the end.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, object_store};
use tokio::io::AsyncReadExt;

const BUCKET: &str = "bench";
const OBJECT: &str = "blob";

/// Put or get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Put,
    Get,
}

/// [MB/s] for one put or get of a `size`-byte object (a get first puts it,
/// untimed).
pub fn obj(addr: SocketAddr, size: usize, dir: Dir) -> Result<Vec<f64>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let secs = rt.block_on(run(addr, size, dir))?;
    if secs <= 0.0 {
        bail!("nothing measured");
    }
    Ok(vec![size as f64 / secs / 1e6])
}

async fn run(addr: SocketAddr, size: usize, dir: Dir) -> Result<f64> {
    let client = async_nats::connect(format!("nats://{addr}"))
        .await
        .context("async-nats connect")?;
    let js = jetstream::new(client);
    let store = js
        .create_object_store(object_store::Config {
            bucket: BUCKET.to_string(),
            ..Default::default()
        })
        .await
        .context("create object store")?;
    let data = crate::proto::payload(size);

    let t0 = Instant::now();
    let info = store
        .put(OBJECT, &mut data.as_slice())
        .await
        .context("object put")?;
    let put_secs = t0.elapsed().as_secs_f64();
    if info.size != size {
        bail!("object info says {} bytes, put {size}", info.size);
    }
    if dir == Dir::Put {
        return Ok(put_secs);
    }

    let t0 = Instant::now();
    let mut obj = store.get(OBJECT).await.context("object get")?;
    let mut buf = vec![0u8; 1024 * 1024];
    let mut got = 0usize;
    loop {
        // The reader fails at the end if the digest does not match.
        let n = obj.read(&mut buf).await.context("object read")?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    if got != size {
        bail!("object get returned {got} bytes, expected {size}");
    }
    Ok(secs)
}

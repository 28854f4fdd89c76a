//! `stream view`: page through a stream's messages with `STREAM.MSG.GET`
//! (`next_by_subj` from a sequence), asking for each next page on a terminal
//! and printing every message to the end otherwise.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::json;

use crate::conn::{ApiError, Js};
use crate::stream::{b64, ts};

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// Stream name
    pub stream: String,
    /// Messages per page
    #[arg(long, default_value_t = 10)]
    pub size: u64,
    /// Start at this sequence
    #[arg(long, default_value_t = 1)]
    pub id: u64,
    /// Only show messages on this subject (wildcards allowed)
    #[arg(long)]
    pub subject: Option<String>,
    /// Show only the message bodies
    #[arg(long)]
    pub raw: bool,
}

/// JetStream's "no message found" error code.
const NO_MESSAGE: u64 = 10037;

pub async fn view(js: &Js, a: ViewArgs) -> Result<()> {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let filter = a.subject.clone().unwrap_or_else(|| ">".into());
    let mut seq = a.id.max(1);
    let mut shown = 0u64;
    loop {
        let req = json!({ "seq": seq, "next_by_subj": filter });
        let resp = match js
            .api(&format!("STREAM.MSG.GET.{}", a.stream), Some(&req))
            .await
        {
            Ok(r) => r,
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(|x| x.err_code == NO_MESSAGE) =>
            {
                if shown == 0 {
                    println!("No messages in stream {}", a.stream);
                } else {
                    println!("Reached apparent end of data");
                }
                return Ok(());
            }
            Err(e) => return Err(e).context("could not retrieve message"),
        };
        let msg = &resp["message"];
        let got = msg["seq"].as_u64().unwrap_or(seq);
        let data = b64(msg["data"].as_str().unwrap_or(""))?;
        if a.raw {
            println!("{}", String::from_utf8_lossy(&data));
        } else {
            println!(
                "[{got}] Subject: {} Received: {}\n",
                msg["subject"].as_str().unwrap_or(""),
                ts(&msg["time"]).unwrap_or_default()
            );
            let hdrs = b64(msg["hdrs"].as_str().unwrap_or(""))?;
            for l in String::from_utf8_lossy(&hdrs).lines().skip(1) {
                if let Some((k, v)) = l.split_once(':') {
                    println!("  {}: {}", k.trim(), v.trim());
                }
            }
            crate::pubsub::print_body(&data);
            println!();
        }
        shown += 1;
        seq = got + 1;
        if interactive && shown.is_multiple_of(a.size.max(1)) {
            print!("? Next Page? (Y/n) ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            if matches!(line.trim(), "n" | "N" | "no") {
                return Ok(());
            }
        }
    }
}

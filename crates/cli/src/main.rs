//! `rnats`: a NATS command-line tool with the verbs and flags of the
//! official `nats` CLI, built on the async-nats client so it works against
//! any NATS server.

mod backup;
mod bench;
mod conn;
mod consumer;
mod context;
mod kv;
mod obj;
mod output;
mod progress;
mod prompt;
mod pubsub;
mod stream;
mod stream_edit;
mod sys;
mod view;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rnats",
    version,
    about = "NATS Utility",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    conn: conn::ConnOpts,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Generic data publish utility
    Pub(pubsub::PubCmd),
    /// Generic subscription client
    Sub(pubsub::SubCmd),
    /// Generic request-reply request utility
    #[command(visible_alias = "request")]
    Req(pubsub::ReqCmd),
    /// Generic service reply utility
    Reply(pubsub::ReplyCmd),
    /// JetStream Stream management
    #[command(subcommand, visible_aliases = ["str", "st", "ms", "s"])]
    Stream(stream::StreamCmd),
    /// JetStream Consumer management
    #[command(subcommand, visible_aliases = ["con", "obs", "c"])]
    Consumer(consumer::ConsumerCmd),
    /// Interacts with a JetStream based Key-Value store
    #[command(subcommand)]
    Kv(kv::KvCmd),
    /// Interacts with a JetStream based Object store
    #[command(subcommand, visible_aliases = ["obj"])]
    Object(obj::ObjCmd),
    /// Manage nats configuration contexts
    #[command(subcommand, visible_aliases = ["ctx"])]
    Context(context::ContextCmd),
    /// Server information
    #[command(subcommand, visible_aliases = ["srv"])]
    Server(sys::ServerCmd),
    /// Account information
    #[command(subcommand, visible_aliases = ["a"])]
    Account(sys::AccountCmd),
    /// Show Advisories and Events
    #[command(visible_aliases = ["events"])]
    Event(sys::EventArgs),
    /// Benchmark utility
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    // Managing contexts must see only the flags given, not the selected one.
    if let Cmd::Context(c) = cli.cmd {
        return context::run(&cli.conn, c);
    }
    cli.conn.apply_context()?;
    let conn = &cli.conn;
    match cli.cmd {
        Cmd::Pub(c) => pubsub::publish(conn, c).await,
        Cmd::Sub(c) => pubsub::subscribe(conn, c).await,
        Cmd::Req(c) => pubsub::request(conn, c).await,
        Cmd::Reply(c) => pubsub::reply(conn, c).await,
        Cmd::Stream(c) => stream::run(conn, c).await,
        Cmd::Consumer(c) => consumer::run(conn, c).await,
        Cmd::Kv(c) => kv::run(conn, c).await,
        Cmd::Object(c) => obj::run(conn, c).await,
        Cmd::Server(c) => sys::server(conn, c).await,
        Cmd::Account(c) => sys::account(conn, c).await,
        Cmd::Event(c) => sys::event(conn, c).await,
        Cmd::Bench(c) => bench::run(conn, c).await,
        Cmd::Context(_) => Ok(()),
    }
}

fn main() {
    // Exit quietly when stdout is closed early (e.g. `rnats ... | head`).
    // SAFETY: restoring the default SIGPIPE disposition before any threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let res = rt.block_on(async move {
        tokio::select! {
            r = run(cli) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    if let Err(e) = res {
        // Like the nats CLI: `nats: error: <context>: <cause>`.
        let msg = e
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        eprintln!("rnats: error: {msg}");
        std::process::exit(1);
    }
}

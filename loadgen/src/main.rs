//! `rapporteur-loadgen`: a meeting's load against any automerge-repo 2.x sync server.
//!
//! Writers type into bullets of the group documents at a given rate; viewers follow every
//! group document and the index. The generator measures edits accepted per second, the
//! latency from an edit leaving its writer to it reaching each viewer (one clock: this
//! process's), the messages delivered, whether every viewer ends with the server's heads, and
//! the server process's CPU time and peak memory. It prints a JSON report and a summary.
//!
//! Everything runs on 127.0.0.1: the generator refuses any other host.

mod client;
mod receive;
mod setup;
mod shape;
mod stats;
mod wire;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use client::{DocState, Phase, Run, WriterSpec};

/// The allocator the server uses, so that the generator's own CPU time is not spent in malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    /// Rapporteur: documents and tokens from its API and CLI.
    Rapporteur,
    /// A server that accepts documents from peers (the stock automerge-repo sync server).
    Stock,
}

#[derive(Parser)]
#[command(
    name = "rapporteur-loadgen",
    about = "Load generator for automerge-repo sync servers"
)]
struct Cli {
    #[arg(long, value_enum, default_value = "rapporteur")]
    target: Target,
    /// WebSocket URL, e.g. ws://127.0.0.1:8080/sync (Rapporteur) or ws://127.0.0.1:3030.
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 30)]
    writers: usize,
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// Group documents (Rapporteur's demo meeting has six).
    #[arg(long, default_value_t = 6)]
    docs: usize,
    /// Edits per second per writer.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Seconds of typing.
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Seconds viewers get after the writers stop to reach the server's heads.
    #[arg(long, default_value_t = 20)]
    drain: u64,
    /// The server's process id: its CPU time and memory are read from /proc.
    #[arg(long)]
    server_pid: Option<String>,
    /// Rapporteur: the server binary, used to mint invites (`rapporteur invite`).
    #[arg(long, default_value = "target/release/rapporteur")]
    rapporteur_bin: String,
    /// Rapporteur: the server's database, for minting invites.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value = "gcm-stocktaking-2017")]
    meeting: String,
    /// Rapporteur: writer tokens instead of minting (writer i types in group i mod docs + 1).
    #[arg(long = "writer-token")]
    writer_tokens: Vec<String>,
    /// Rapporteur: the delegate token all viewers share, instead of minting.
    #[arg(long)]
    viewer_token: Option<String>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// A name for this run in the report.
    #[arg(long, default_value = "run")]
    label: String,
    /// Viewers connecting at the same time during setup.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let host = cli
        .url
        .trim_start_matches("ws://")
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    if !host.starts_with("127.0.0.1:") {
        bail!("the load generator only targets 127.0.0.1, not {host}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

/// Per-writer URL and person, and the viewers' URL.
struct Access {
    writers: Vec<(String, String)>,
    viewer_url: String,
    groups: Vec<String>,
    index: Option<String>,
}

fn with_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={token}")
}

async fn rapporteur_access(cli: &Cli) -> anyhow::Result<Access> {
    let http = cli
        .url
        .replacen("ws://", "http://", 1)
        .split("/sync")
        .next()
        .unwrap_or("")
        .to_owned();
    let mint = |role: &str, group: Option<usize>, name: &str| {
        let db = cli
            .database_url
            .as_deref()
            .context("--database-url is needed to mint invites")?;
        setup::mint(&cli.rapporteur_bin, db, &cli.meeting, role, group, name)
    };
    let viewer = match &cli.viewer_token {
        Some(t) => t.clone(),
        None => mint("delegate", None, "Load viewers")?,
    };
    let (mut groups, index) = setup::meeting_docs(&http, &cli.meeting, &viewer)?;
    groups.truncate(cli.docs);
    let mut writers = Vec::new();
    for i in 0..cli.writers {
        let group = i % groups.len() + 1;
        let token = match cli.writer_tokens.get(i) {
            Some(t) => t.clone(),
            None => mint("rapporteur", Some(group), &format!("Writer {i}"))?,
        };
        let person = setup::person_id(&http, &token)?;
        writers.push((with_token(&cli.url, &token), person));
    }
    Ok(Access {
        writers,
        viewer_url: with_token(&cli.url, &viewer),
        groups,
        index: Some(index),
    })
}

async fn stock_access(cli: &Cli) -> anyhow::Result<Access> {
    let mut groups = Vec::new();
    for n in 0..cli.docs {
        let id = shape::new_doc_id();
        client::create(&cli.url, &id, shape::outcome(n as u32 + 1)?).await?;
        groups.push(id);
    }
    let index = shape::new_doc_id();
    client::create(&cli.url, &index, shape::index(&groups)?).await?;
    let writers = (0..cli.writers)
        .map(|i| (cli.url.clone(), format!("writer-{i}")))
        .collect();
    Ok(Access {
        writers,
        viewer_url: cli.url.clone(),
        groups,
        index: Some(index),
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let access = match cli.target {
        Target::Rapporteur => rapporteur_access(&cli).await?,
        Target::Stock => stock_access(&cli).await?,
    };
    let mut docs: Vec<DocState> = access.groups.iter().cloned().map(DocState::new).collect();
    docs.extend(access.index.clone().map(DocState::new));
    let (phase, _) = watch::channel(Phase::Setup);
    let run = Arc::new(Run {
        counters: Default::default(),
        latency: Default::default(),
        docs,
        phase,
    });
    let setup_started = Instant::now();

    // Writers first: their bullets exist before anyone measures anything.
    let mut writer_tasks = Vec::new();
    let mut readies = Vec::new();
    for (i, (url, person)) in access.writers.iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        readies.push(rx);
        let spec = WriterSpec {
            url: url.clone(),
            doc: i % access.groups.len(),
            person: person.clone(),
            rate: cli.rate,
            seed: 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
        };
        let r = run.clone();
        writer_tasks.push(tokio::spawn(async move {
            let result = client::writer(r.clone(), spec, tx).await;
            if result.is_err() {
                r.counters.writers_failed.fetch_add(1, Relaxed);
            }
            result
        }));
    }
    for rx in readies {
        if tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .is_err()
        {
            eprintln!("a writer did not get ready in time");
        }
    }

    let gate = Arc::new(Semaphore::new(cli.connect_concurrency.max(1)));
    let mut viewer_tasks = Vec::new();
    for _ in 0..cli.viewers {
        let run = run.clone();
        let url = access.viewer_url.clone();
        let permit = gate.clone().acquire_owned().await?;
        viewer_tasks.push(tokio::spawn(async move {
            let result = client::viewer(run.clone(), url, permit).await;
            if result.is_err() {
                run.counters.viewers_failed.fetch_add(1, Relaxed);
            }
            result
        }));
    }
    let ready_by = Instant::now() + Duration::from_secs(300);
    loop {
        let c = &run.counters;
        let settled = c.viewers_ready.load(Relaxed) + c.viewers_failed.load(Relaxed);
        if settled >= cli.viewers as u64 || Instant::now() > ready_by {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();
    eprintln!(
        "setup: {} writers, {} of {} viewers ready in {setup_secs:.1} s",
        access.writers.len(),
        run.counters.viewers_ready.load(Relaxed),
        cli.viewers
    );

    // The measured window.
    let pid = cli.server_pid.clone();
    let cpu_before = pid.as_deref().and_then(stats::cpu_seconds);
    let own_before = stats::cpu_seconds("self");
    let started = Instant::now();
    let until = started + Duration::from_secs(cli.duration);
    run.phase.send_replace(Phase::Run { until });
    let mut peak_rss = 0u64;
    let mut rss_samples = Vec::new();
    while Instant::now() < until {
        if let Some(rss) = pid.as_deref().and_then(|p| stats::status_kib(p, "VmRSS")) {
            peak_rss = peak_rss.max(rss);
            rss_samples.push(rss);
        }
        tokio::time::sleep(Duration::from_millis(500).min(until - Instant::now())).await;
    }
    // Typing is over; wait until every writer's edits are acknowledged (or a minute).
    let settle_by = Instant::now() + Duration::from_secs(60);
    while Instant::now() < settle_by {
        let c = &run.counters;
        if c.writers_done.load(Relaxed) + c.writers_failed.load(Relaxed)
            >= access.writers.len() as u64
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = pid.as_deref().and_then(stats::cpu_seconds);
    let own_after = stats::cpu_seconds("self");
    let hwm = pid.as_deref().and_then(|p| stats::status_kib(p, "VmHWM"));

    // The server's heads, fetched by a fresh peer, are what everyone must end with.
    // A server too far behind to answer a new peer in time is reported, not a crash: every
    // document then counts as diverged.
    let mut targets = Vec::new();
    let mut unanswered = 0usize;
    for d in &run.docs {
        match client::fetch_heads(&access.viewer_url, &d.id).await {
            Ok(mut heads) => {
                heads.sort();
                targets.push(heads);
            }
            Err(e) => {
                eprintln!("could not fetch the final heads of {}: {e:#}", d.id);
                unanswered += 1;
                targets.push(Vec::new());
            }
        }
    }
    let targets = Arc::new(targets);
    run.phase.send_replace(Phase::Drain {
        targets: targets.clone(),
        until: Instant::now() + Duration::from_secs(cli.drain),
    });
    let mut writers_diverged = 0usize;
    for t in writer_tasks {
        match t.await? {
            Ok(end) => {
                let mut h = end.heads;
                h.sort();
                if h != targets[end.doc] {
                    writers_diverged += 1;
                }
            }
            Err(e) => {
                writers_diverged += 1;
                eprintln!("writer failed: {e:#}");
            }
        }
    }
    let mut viewer_docs_diverged = 0usize;
    for t in viewer_tasks {
        match t.await? {
            Ok(n) => viewer_docs_diverged += n,
            Err(e) => {
                viewer_docs_diverged += run.docs.len();
                eprintln!("viewer failed: {e:#}");
            }
        }
    }

    let c = &run.counters;
    let sent = c.edits_sent.load(Relaxed);
    let accepted = c.edits_accepted.load(Relaxed);
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let own_cpu = match (own_before, own_after) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let report = json!({
        "label": cli.label,
        "target": match cli.target { Target::Rapporteur => "rapporteur", Target::Stock => "stock" },
        "config": {
            "writers": cli.writers, "viewers": cli.viewers, "docs": run.docs.len(),
            "rate_per_writer": cli.rate, "duration_s": cli.duration,
        },
        "setup_s": setup_secs,
        "elapsed_s": elapsed,
        "edits_sent": sent,
        "edits_accepted": accepted,
        "edits_per_s_offered": sent as f64 / elapsed,
        "edits_per_s_accepted": accepted as f64 / elapsed,
        "latency_ms": {
            "samples": run.latency.count(),
            "p50": run.latency.quantile_ms(0.50),
            "p99": run.latency.quantile_ms(0.99),
            "max": run.latency.max_ms(),
        },
        "expected_deliveries": sent * cli.viewers as u64,
        "frames_to_viewers": c.frames_to_viewers.load(Relaxed),
        "changes_to_viewers": c.changes_to_viewers.load(Relaxed),
        "acks_from_viewers": c.acks_sent.load(Relaxed),
        "frames_to_writers": c.frames_to_writers.load(Relaxed),
        "frames_from_writers": c.frames_from_writers.load(Relaxed),
        "lost_edits": sent.saturating_sub(accepted),
        "viewer_docs_diverged": viewer_docs_diverged,
        "writers_diverged": writers_diverged,
        "viewers_ready": c.viewers_ready.load(Relaxed),
        "viewers_failed": c.viewers_failed.load(Relaxed),
        "writers_failed": c.writers_failed.load(Relaxed),
        "errors": c.errors.load(Relaxed),
        "final_heads_unanswered": unanswered,
        "server": {
            "pid": pid,
            "cpu_s": server_cpu,
            "cpu_percent": server_cpu.map(|s| 100.0 * s / elapsed),
            "peak_rss_kib_in_window": (peak_rss > 0).then_some(peak_rss),
            "vm_hwm_kib": hwm,
        },
        "loadgen_cpu_percent": own_cpu.map(|s| 100.0 * s / elapsed),
    });
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &cli.out {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{text}");
    eprintln!(
        "{}: {accepted}/{sent} edits accepted ({:.1}/s), latency p50 {:.2} ms p99 {:.2} ms max {:.1} ms over {} deliveries; \
         diverged: {viewer_docs_diverged} viewer docs, {writers_diverged} writers; server CPU {}; peak memory {}",
        cli.label,
        accepted as f64 / elapsed,
        run.latency.quantile_ms(0.5),
        run.latency.quantile_ms(0.99),
        run.latency.max_ms(),
        run.latency.count(),
        server_cpu.map(|s| format!("{:.0}%", 100.0 * s / elapsed)).unwrap_or("n/a".into()),
        hwm.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or("n/a".into()),
    );
    Ok(())
}

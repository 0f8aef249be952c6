//! The `rapporteur` binary: read the command line, start tracing, open the store, then serve
//! (or mint an invite, or create a meeting).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use rapporteur::admin::{self, NewInvite};
use rapporteur::docs::DocsConfig;
use rapporteur::meeting::{MeetingFile, Role};
use rapporteur::sync::limits::Limits;
use rapporteur::{store, AppState, Settings};

/// mimalloc rather than the system allocator: Automerge allocates heavily (loading a document
/// rebuilds every change), and so does the fan-out to many viewers (one state and one frame per
/// viewer). With glibc's malloc, allocation and freeing were a fifth of the server's CPU time
/// under the meeting's load, and a cold load of a 50,000-change document took a quarter longer.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rapporteur",
    version,
    about = "Live drafting for meetings in breakout groups"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(clap::Args)]
struct Db {
    /// `sqlite://path` (created if missing).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://rapporteur.db")]
    database_url: String,
    /// The URL people reach the server at (invite links start with it).
    #[arg(long, env = "RAPPORTEUR_PUBLIC_URL")]
    public_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[arg(long, env = "RAPPORTEUR_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        #[command(flatten)]
        db: Db,
        #[arg(
            long,
            env = "RAPPORTEUR_LOG_FORMAT",
            value_enum,
            default_value = "pretty"
        )]
        log_format: LogFormat,
        /// The built web app.
        #[arg(long, env = "RAPPORTEUR_WEB_DIR", default_value = "web/dist")]
        web_dir: PathBuf,
        /// Seconds a document nobody follows stays in memory.
        #[arg(long, env = "RAPPORTEUR_IDLE_UNLOAD_SECS", default_value_t = 120)]
        idle_unload_secs: u64,
        /// Open sync connections allowed from one IP address (a venue behind one NAT address
        /// counts as one).
        #[arg(long, env = "RAPPORTEUR_MAX_CONNECTIONS_PER_IP", default_value_t = Limits::default().connections_per_ip)]
        max_connections_per_ip: usize,
        /// Messages per second one sync connection may send on average; a faster one is closed.
        #[arg(long, env = "RAPPORTEUR_MAX_MESSAGES_PER_SEC", default_value_t = Limits::default().messages_per_sec)]
        max_messages_per_sec: f64,
    },
    /// Mint an invite link.
    Invite {
        #[arg(long)]
        meeting: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        group: Option<u32>,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        expires_in_hours: Option<u32>,
        #[command(flatten)]
        db: Db,
    },
    /// Meetings.
    Meeting {
        #[command(subcommand)]
        command: MeetingCommand,
    },
}

#[derive(Subcommand)]
enum MeetingCommand {
    /// Create a meeting from a meeting file (JSON) and print a secretariat invite.
    Create {
        file: PathBuf,
        #[command(flatten)]
        db: Db,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        let all: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("one of {}", all.join(", "))
    })
}

fn init_tracing(format: LogFormat) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, error) = rapporteur::logging::filter(rust_log.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    if let Some(error) = error {
        tracing::warn!("{error}");
    }
}

fn public_url(db: &Db, fallback: &str) -> String {
    db.public_url
        .clone()
        .unwrap_or_else(|| format!("http://{fallback}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            bind,
            db,
            log_format,
            web_dir,
            idle_unload_secs,
            max_connections_per_ip,
            max_messages_per_sec,
        } => {
            init_tracing(log_format);
            let store = store::open(&db.database_url)
                .await
                .with_context(|| format!("opening {}", db.database_url))?;
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .with_context(|| format!("binding {bind}"))?;
            let addr = listener.local_addr()?;
            let public_url = public_url(&db, &addr.to_string());
            if let Some(url) = admin::bootstrap_demo(store.as_ref(), &public_url)
                .await
                .context("creating the demo meeting")?
            {
                println!(
                    "created the demo meeting {}",
                    rapporteur::meeting::DEMO_SLUG
                );
                println!("co-facilitator invite: {url}");
            }
            let settings = Settings {
                public_url: public_url.clone(),
                web_dir,
                docs: DocsConfig {
                    idle_unload: std::time::Duration::from_secs(idle_unload_secs),
                    ..DocsConfig::default()
                },
                limits: Limits {
                    connections_per_ip: max_connections_per_ip,
                    messages_per_sec: max_messages_per_sec,
                    // The same few seconds of burst as the default allows.
                    message_burst: max_messages_per_sec * 5.0,
                },
            };
            let state = AppState::new(store, settings).await.context("starting")?;
            println!("rapporteur listening on http://{addr}");
            tracing::info!(%addr, %public_url, "listening");
            rapporteur::serve(listener, state, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Invite {
            meeting,
            role,
            group,
            name,
            expires_in_hours,
            db,
        } => {
            let store = store::open(&db.database_url)
                .await
                .context("opening the database")?;
            let new = NewInvite {
                meeting,
                role,
                group,
                name,
                expires_in_hours,
            };
            let (_, url) =
                admin::create_invite(store.as_ref(), &public_url(&db, "127.0.0.1:8080"), new)
                    .await?;
            println!("{url}");
        }
        Command::Meeting {
            command: MeetingCommand::Create { file, db },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let parsed: MeetingFile =
                serde_json::from_str(&text).context("parsing the meeting file")?;
            let store = store::open(&db.database_url)
                .await
                .context("opening the database")?;
            let meeting = admin::create_meeting(store.as_ref(), parsed).await?;
            let invite = NewInvite {
                meeting: meeting.slug.clone(),
                role: Role::Secretariat,
                group: None,
                name: "Secretariat".into(),
                expires_in_hours: None,
            };
            let (_, url) =
                admin::create_invite(store.as_ref(), &public_url(&db, "127.0.0.1:8080"), invite)
                    .await?;
            println!("created meeting {}", meeting.slug);
            println!("secretariat invite: {url}");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

//! The server's log filter.
//!
//! `RUST_LOG` sets it, in `tracing`'s `EnvFilter` syntax; unset, it is `DEFAULT`. Whatever it
//! says, automerge's own spans stay off unless it names `automerge`: automerge 0.12 instruments
//! its loading of changes with `info` spans whose fields include the document's whole change
//! graph, and an enabled span formats its fields when it is created, whether or not anything is
//! ever logged inside it. The server loads every change a writer sends (to check it before
//! accepting it), so at `info` this took a tenth of the server's CPU a minute into a meeting,
//! and more with every change the documents gained.

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset.
pub const DEFAULT: &str = "info,sqlx=warn,tower_http=info";

/// What keeps automerge's spans off.
const AUTOMERGE_QUIET: &str = "automerge=warn";

/// The filter `rust_log` (the value of `RUST_LOG`) asks for, with automerge's spans off unless it
/// names automerge. An invalid value gives the default and the parse error, to be logged.
pub fn filter(rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let spec = rust_log.map(str::trim).filter(|s| !s.is_empty());
    let (filter, error) = match spec.map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, None),
        Some(Err(e)) => (
            EnvFilter::new(DEFAULT),
            Some(format!(
                "RUST_LOG is not a valid filter ({e}); using {DEFAULT:?}"
            )),
        ),
        None => (EnvFilter::new(DEFAULT), None),
    };
    if error.is_none() && spec.is_some_and(|s| s.contains("automerge")) {
        return (filter, error);
    }
    let quiet = AUTOMERGE_QUIET.parse().expect("a valid directive");
    (filter.add_directive(quiet), error)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};
    use tracing::span;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::filter;

    /// Counts the spans automerge opens that the filter lets through.
    #[derive(Clone, Default)]
    struct AutomergeSpans(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for AutomergeSpans {
        fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
            if attrs.metadata().target().starts_with("automerge") {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Loads a change into a document, as the server does with every change a writer sends,
    /// under the filter `rust_log` gives; returns how many automerge spans it let through.
    fn automerge_spans_when_loading(rust_log: Option<&str>) -> usize {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "title", "Means of implementation").unwrap();
        tx.commit();
        let bytes = doc.save();
        let spans = AutomergeSpans::default();
        let subscriber = tracing_subscriber::registry()
            .with(filter(rust_log).0)
            .with(spans.clone());
        tracing::subscriber::with_default(subscriber, || {
            Automerge::new().load_incremental(&bytes).unwrap();
            tracing::info!("the server's own events still pass");
        });
        spans.0.load(Ordering::Relaxed)
    }

    #[test]
    fn automerge_spans_are_off_unless_rust_log_names_automerge() {
        assert_eq!(automerge_spans_when_loading(None), 0);
        assert_eq!(automerge_spans_when_loading(Some("info")), 0);
        assert_eq!(automerge_spans_when_loading(Some("trace")), 0);
        assert!(automerge_spans_when_loading(Some("info,automerge=info")) > 0);
    }

    #[test]
    fn an_invalid_rust_log_gives_the_default_and_says_why() {
        let (_, error) = filter(Some("info,=[=="));
        assert!(error.is_some_and(|e| e.contains("RUST_LOG")));
        assert_eq!(automerge_spans_when_loading(Some("info,=[==")), 0);
        assert!(filter(Some("debug")).1.is_none());
        assert!(filter(Some("  ")).1.is_none());
    }
}

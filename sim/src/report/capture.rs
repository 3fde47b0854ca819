//! A tracing layer that keeps a run's info-level events in memory, with simulated time and the
//! node (and group) they came from: the raw material of a failure report's cluster timeline.
//!
//! A failing seed is replayed under this layer (the same seed and binary give the same run,
//! so the replay shows exactly what the failing run did), rather than having every run pay for
//! recording what only a failing one needs.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// One captured event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// Simulated time.
    pub at: Duration,
    /// The node whose span it was logged in (`replica{id=..}`), if any.
    pub node: Option<u64>,
    /// The shardkv group whose span it was logged in (`group{gid=..}`; 0 for `ctrler`).
    pub group: Option<u64>,
    /// The event's message.
    pub message: String,
    /// Its other fields, rendered.
    pub fields: Vec<(String, String)>,
}

impl Captured {
    /// The field called `name`, if the event has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

/// The node id a `replica` span carries.
struct NodeOfSpan(u64);
/// The group a `group` or `ctrler` span stands for.
struct GroupOfSpan(u64);

/// Reads one integer field of a span.
struct IdField(&'static str, Option<u64>);

impl Visit for IdField {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == self.0 {
            self.1 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

struct CaptureLayer {
    events: Arc<Mutex<Vec<Captured>>>,
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        match attrs.metadata().name() {
            "replica" => {
                let mut node = IdField("id", None);
                attrs.record(&mut node);
                if let Some(node) = node.1 {
                    span.extensions_mut().insert(NodeOfSpan(node));
                }
            }
            "group" => {
                let mut gid = IdField("gid", None);
                attrs.record(&mut gid);
                if let Some(gid) = gid.1 {
                    span.extensions_mut().insert(GroupOfSpan(gid));
                }
            }
            "ctrler" => span.extensions_mut().insert(GroupOfSpan(0)),
            _ => {}
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (mut node, mut group) = (None, None);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(n) = extensions.get::<NodeOfSpan>() {
                    node = Some(n.0);
                }
                if let Some(g) = extensions.get::<GroupOfSpan>() {
                    group = Some(g.0);
                }
            }
        }
        let at = madsim::time::TimeHandle::try_current().map_or(Duration::ZERO, |t| t.elapsed());
        self.events
            .lock()
            .expect("the capture lock is never poisoned")
            .push(Captured {
                at,
                node,
                group,
                message: fields.message,
                fields: fields.fields,
            });
    }
}

/// Serializes captures within a process. `tracing` keeps one global maximum level, recomputed
/// whenever a subscriber is set or dropped on any thread; while one thread's capture ends,
/// another's may briefly see events filtered out, and its timeline loses lines (a report
/// written by a `--jobs` worker, or two tests capturing at once). Captures are short replays,
/// so running them one at a time costs little.
static CAPTURING: Mutex<()> = Mutex::new(());

/// Runs `f` on the current thread with every info-level event captured; returns its result
/// and the events in the order they were logged.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Captured>) {
    let _one_at_a_time = CAPTURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = CaptureLayer {
        events: events.clone(),
    };
    let subscriber = tracing_subscriber::registry()
        .with(layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    let result = tracing::subscriber::with_default(subscriber, f);
    let events = std::mem::take(&mut *events.lock().expect("never poisoned"));
    (result, events)
}

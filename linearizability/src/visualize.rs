//! A self-contained HTML page showing a check's result. It loads nothing from the network:
//! styles are inline and the timelines are inline SVG with native tooltips.
//!
//! The page opens on what failed: partitions that are not linearizable come first, each with
//! the small set of conflicting operations [`explain`](crate::explain::explain) finds (the
//! same account `lincheck` prints), and passing partitions are folded away below. For each
//! partition the page shows a timeline (one row per client, one box per operation, time
//! rank-compressed so that short and long gaps take the same room; the conflicting operations
//! outlined), the linearization or the longest linearizable prefix with the state after each
//! step, and, for an illegal partition, the first operation that cannot be linearized with the
//! states before and after.
//!
//! A caller that knows more about each operation than the history does (the simulator knows
//! the server that answered it and the faults active meanwhile) passes [`Notes`]: a line per
//! operation, shown in its tooltip and in the tables, and time bands (faults) drawn behind the
//! timeline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::checker::{CheckReport, PartitionReport, Verdict};
use crate::explain::{describe_numbered, explain_numbered, replay, Explanation, BUDGET_DEFAULT};
use crate::history::{ClientId, Operation, Timestamp};
use crate::model::Model;
use crate::numbering::Numbering;

/// What a caller knows about a history beyond the operations themselves.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    /// Per operation (index into the history): one more line about it.
    pub per_op: BTreeMap<usize, String>,
    /// Time bands to draw behind the timelines (for example the faults active then).
    pub bands: Vec<Band>,
}

/// A stretch of time worth marking on a timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    /// What it is (shown as its tooltip).
    pub label: String,
    /// Start.
    pub from: Timestamp,
    /// End.
    pub to: Timestamp,
}

const ROW_PX: usize = 26;
/// Width of one label character (11 px monospace).
const LABEL_CHAR_PX: usize = 7;
const BOX_PX: usize = 18;
const LABEL_PX: usize = 90;
const TIMELINE_PX_MAX: usize = 1800;
const STEP_PX_MIN: usize = 4;
const STEP_PX_MAX: usize = 40;

const STYLE: &str = "body{font-family:sans-serif;margin:16px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:15px}
.ok{color:#17702a}.illegal{color:#b00020}.unknown{color:#8a6d00}
.timeline{overflow-x:auto;border:1px solid #ccc;padding:4px;background:#fafafa}
table{border-collapse:collapse;font-size:13px;margin-top:8px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;font-family:monospace}
tr.blocked td{background:#fde0e0}tr.conflict td{background:#fff1c2}
details>summary{cursor:pointer;font-size:15px;margin-top:12px}
.conflicts{border:2px solid #b00020;padding:6px 10px;margin:10px 0;background:#fff8f8}
.legend span{display:inline-block;padding:1px 6px;margin-right:8px;font-size:12px}
pre{background:#f4f4f4;padding:8px;font-size:12px;white-space:pre-wrap}";

const LEGEND: &str = "<div class=\"legend\">\
    <span style=\"background:#9fd8a8\">linearized (number = position)</span>\
    <span style=\"background:#f28b8b\">cannot be linearized next</span>\
    <span style=\"background:#ddd\">not reached</span>\
    <span style=\"border:1px dashed #555\">outcome unknown</span>\
    <span style=\"border:3px solid #b00020\">in the conflicting set</span>\
    <span style=\"background:#ffd9a8\">fault band</span></div>\n";

/// Escapes text for HTML and SVG.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Wraps sections into one complete page.
pub fn page(title: &str, sections: &[String]) -> String {
    let mut html = page_start(title);
    for section in sections {
        html.push_str(section);
    }
    html.push_str(PAGE_END);
    html
}

/// What [`page`] puts before the sections, for a page written piece by piece.
pub fn page_start(title: &str) -> String {
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    )
}

/// What [`page`] puts after the sections.
pub const PAGE_END: &str = "</body></html>\n";

/// The section for one checked history: a heading, a summary with links, then every
/// partition, failing ones first and open (see the module docs).
pub fn section<M>(
    title: &str,
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &CheckReport,
) -> String
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    section_with_notes(title, model, history, report, &Notes::default())
}

/// [`section`], with what the caller knows about each operation.
pub fn section_with_notes<M>(
    title: &str,
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &CheckReport,
    notes: &Notes,
) -> String
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let body = |_: usize, partition: &PartitionReport| {
        Ok::<_, std::convert::Infallible>(partition_body(
            model,
            history,
            partition,
            Numbering::Index,
            notes,
        ))
    };
    let mut html = String::new();
    let emit = |part: &str| {
        html.push_str(part);
        Ok(())
    };
    match section_from(title, history.len(), report, body, emit) {
        Ok(()) => html,
        Err(never) => match never {},
    }
}

/// [`section`] for a history whose partitions are loaded one at a time (see
/// [`crate::spill`]), given piece by piece to `emit` so that the page of a large history
/// need not be held in memory either: `load(k)` gives the operations of partition `k` of
/// `report`, in order, which the report numbers `report.partitions[k].ops`. `operations` is
/// the length of the history. The pieces make the section [`section`] makes of the whole
/// history.
///
/// # Errors
/// The first error `load` or `emit` returns.
pub fn section_loaded<M, E, L, W>(
    title: &str,
    model: &M,
    operations: usize,
    report: &CheckReport,
    mut load: L,
    emit: W,
) -> Result<(), E>
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
    L: FnMut(usize) -> Result<Vec<Operation<M::Input, M::Output>>, E>,
    W: FnMut(&str) -> Result<(), E>,
{
    let body = |k: usize, partition: &PartitionReport| {
        let ops = load(k)?;
        let local = crate::spill::localize(partition);
        Ok(partition_body(
            model,
            &ops,
            &local,
            Numbering::Numbers(&partition.ops),
            &Notes::default(),
        ))
    };
    section_from(title, operations, report, body, emit)
}

/// One partition's part of a section: its explanation, if illegal, and its timeline and
/// table. The report's operation numbers are indices into `history`.
fn partition_body<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    partition: &PartitionReport,
    numbering: Numbering<'_>,
    notes: &Notes,
) -> String
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let explanation = explain_numbered(model, history, partition, BUDGET_DEFAULT, numbering);
    partition_html(
        model,
        history,
        partition,
        explanation.as_ref(),
        numbering,
        notes,
    )
}

/// A section around the partitions' parts, which `body(k, partition)` makes, given to `emit`
/// piece by piece.
fn section_from<E>(
    title: &str,
    operations: usize,
    report: &CheckReport,
    mut body: impl FnMut(usize, &PartitionReport) -> Result<String, E>,
    mut emit: impl FnMut(&str) -> Result<(), E>,
) -> Result<(), E> {
    let anchor: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<h2>{} ({} operations)</h2>",
        escape(title),
        operations
    );
    html.push_str(LEGEND);
    if report.partitions.is_empty() {
        html.push_str("<p class=\"ok\">Empty history: linearizable.</p>\n");
    }
    // Failing partitions first, in the checker's order, then the rest.
    let mut order: Vec<usize> = (0..report.partitions.len()).collect();
    order.sort_by_key(|&k| report.partitions[k].verdict == Verdict::Ok);
    html.push_str("<p>Partitions: ");
    for &k in &order {
        let partition = &report.partitions[k];
        let class = verdict_class(partition.verdict);
        let name = escape(&partition.name);
        let _ = write!(
            html,
            "<a class=\"{class}\" href=\"#{anchor}-{k}\">{name}</a> "
        );
    }
    html.push_str("</p>\n");
    for &k in &order {
        let partition = &report.partitions[k];
        let failing = partition.verdict != Verdict::Ok;
        let _ = write!(
            html,
            "<details id=\"{anchor}-{k}\"{}><summary class=\"{}\">{}: {}</summary>",
            if failing { " open" } else { "" },
            verdict_class(partition.verdict),
            escape(&partition.name),
            verdict_html(partition.verdict)
        );
        emit(&html)?;
        html.clear();
        emit(&body(k, partition)?)?;
        html.push_str("</details>\n");
    }
    emit(&html)
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Ok => "ok",
        Verdict::Illegal => "illegal",
        Verdict::Unknown(_) => "unknown",
    }
}

/// The conflicting set of an illegal partition: the account `lincheck` prints, and a table
/// of the operations with the caller's notes.
fn conflicts_html<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    explanation: &Explanation,
    numbering: Numbering<'_>,
    notes: &Notes,
) -> String {
    let mut html = format!(
        "<div class=\"conflicts\"><b>{} conflicting operations</b><pre>{}</pre>",
        explanation.ops.len(),
        escape(&explanation.text)
    );
    html.push_str("<table><tr><th>operation</th><th>known about it</th></tr>");
    for &number in &explanation.ops {
        let i = numbering
            .index(number)
            .expect("the explanation names operations of the partition");
        let _ = write!(
            html,
            "<tr class=\"conflict\"><td>{}</td><td>{}</td></tr>",
            escape(&describe_numbered(model, &history[i], number)),
            escape(notes.per_op.get(&number).map_or("", String::as_str))
        );
    }
    html.push_str("</table></div>\n");
    html
}

fn verdict_html(verdict: Verdict) -> String {
    match verdict {
        Verdict::Ok => "<span class=\"ok\">linearizable</span>".to_string(),
        Verdict::Illegal => "<span class=\"illegal\">NOT linearizable</span>".to_string(),
        Verdict::Unknown(reason) => format!("<span class=\"unknown\">unknown ({reason:?})</span>"),
    }
}

fn partition_html<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &PartitionReport,
    explanation: Option<&Explanation>,
    numbering: Numbering<'_>,
    notes: &Notes,
) -> String {
    let order = &report.linearization;
    let states = replay(model, history, order);
    let position: BTreeMap<usize, usize> = order.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<h3>{}: {} &mdash; {} operations, {} configurations explored</h3>",
        escape(&report.name),
        verdict_html(report.verdict),
        report.ops.len(),
        report.configurations
    );
    if let Some(explanation) = explanation {
        html.push_str(&conflicts_html(
            model,
            history,
            explanation,
            numbering,
            notes,
        ));
    }
    let conflicting: &[usize] = explanation.map_or(&[], |e| &e.ops);
    let view = View {
        report,
        position: &position,
        conflicting,
        numbering,
        notes,
    };
    html.push_str("<div class=\"timeline\">");
    html.push_str(&timeline_svg(model, history, &view, &states));
    html.push_str("</div>\n");
    html.push_str(&steps_table(
        model, history, report, &states, numbering, notes,
    ));
    html
}

/// What the timeline of one partition shows besides the operations.
struct View<'a> {
    report: &'a PartitionReport,
    position: &'a BTreeMap<usize, usize>,
    /// The conflicting set, by number.
    conflicting: &'a [usize],
    numbering: Numbering<'a>,
    notes: &'a Notes,
}

/// Maps every call and return time of the partition to its rank.
fn time_ranks<I, O>(history: &[Operation<I, O>], ops: &[usize]) -> BTreeMap<u64, usize> {
    let mut times: Vec<u64> = Vec::with_capacity(ops.len() * 2);
    for &i in ops {
        times.push(history[i].call.0);
        times.extend(history[i].return_time.map(|t| t.0));
    }
    times.sort_unstable();
    times.dedup();
    times
        .into_iter()
        .enumerate()
        .map(|(rank, t)| (t, rank))
        .collect()
}

/// Horizontal layout of a partition's timeline.
struct Layout {
    ranks: BTreeMap<u64, usize>,
    slots: usize,
    step: usize,
}

impl Layout {
    fn new<I, O>(history: &[Operation<I, O>], ops: &[usize]) -> Self {
        let ranks = time_ranks(history, ops);
        let slots = ranks.len() + 1;
        let step = (TIMELINE_PX_MAX / slots).clamp(STEP_PX_MIN, STEP_PX_MAX);
        Self { ranks, slots, step }
    }

    /// The x of an arbitrary time: the slot of the first event time at or after it.
    fn x_of(&self, t: u64) -> usize {
        let rank = self
            .ranks
            .range(t..)
            .next()
            .map_or(self.slots, |(_, &rank)| rank);
        LABEL_PX + rank * self.step
    }

    fn width(&self) -> usize {
        LABEL_PX + (self.slots + 1) * self.step
    }

    /// Left and right edges of an operation's box; an open operation runs to the end.
    fn span<I, O>(&self, op: &Operation<I, O>) -> (usize, usize) {
        let x0 = LABEL_PX + self.ranks[&op.call.0] * self.step;
        let x1 = op
            .return_time
            .map_or(LABEL_PX + self.slots * self.step, |t| {
                LABEL_PX + self.ranks[&t.0] * self.step + self.step / 2
            });
        (x0, x1.max(x0 + 3))
    }
}

fn timeline_svg<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    view: &View<'_>,
    states: &[M::State],
) -> String {
    let report = view.report;
    let layout = Layout::new(history, &report.ops);
    let mut clients: Vec<ClientId> = report.ops.iter().map(|&i| history[i].client).collect();
    clients.sort_unstable();
    clients.dedup();
    let row: BTreeMap<ClientId, usize> = clients.iter().enumerate().map(|(r, &c)| (c, r)).collect();
    let (width, height) = (layout.width(), clients.len() * ROW_PX + 8);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-size=\"11\" font-family=\"monospace\">"
    );
    let (first, last) = match (layout.ranks.keys().next(), layout.ranks.keys().last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (0, 0),
    };
    for band in &view.notes.bands {
        if band.to.0 < first || band.from.0 > last {
            continue;
        }
        let (x0, x1) = (layout.x_of(band.from.0), layout.x_of(band.to.0));
        let w = x1.saturating_sub(x0).max(2);
        let _ = write!(
            svg,
            "<g><title>{}</title><rect x=\"{x0}\" y=\"0\" width=\"{w}\" height=\"{height}\" \
             fill=\"#ffd9a8\" fill-opacity=\"0.45\"/></g>",
            escape(&band.label)
        );
    }
    for (r, client) in clients.iter().enumerate() {
        let y = r * ROW_PX + 4;
        let (text_y, line_y) = (y + 13, y + BOX_PX / 2);
        let name = escape(&client.to_string());
        let _ = write!(
            svg,
            "<text x=\"2\" y=\"{text_y}\">{name}</text><line x1=\"{LABEL_PX}\" \
             x2=\"{width}\" y1=\"{line_y}\" y2=\"{line_y}\" stroke=\"#eee\"/>"
        );
    }
    for &i in &report.ops {
        let tip = tooltip(model, history, view, states, i);
        let y = row[&history[i].client] * ROW_PX + 4;
        svg.push_str(&op_box(
            &layout,
            &history[i],
            y,
            view.position.get(&i),
            (
                report.blocked == Some(i),
                view.conflicting.contains(&view.numbering.of(i)),
            ),
            &tip,
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn tooltip<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    view: &View<'_>,
    states: &[M::State],
    i: usize,
) -> String {
    let report = view.report;
    let number = view.numbering.of(i);
    let mut tip = describe_numbered(model, &history[i], number);
    if let Some(note) = view.notes.per_op.get(&number) {
        tip.push('\n');
        tip.push_str(note);
    }
    if view.conflicting.contains(&number) {
        tip.push_str("\nin the conflicting set");
    }
    if let Some(&k) = view.position.get(&i) {
        if let Some(state) = states.get(k) {
            let state = model.describe_state(state);
            let _ = write!(
                tip,
                "\nposition {} in the order; state after: {state}",
                k + 1
            );
        }
    } else if report.blocked == Some(i) {
        tip.push_str("\ncannot be linearized after the longest legal prefix");
    }
    tip
}

fn op_box<I, O>(
    layout: &Layout,
    op: &Operation<I, O>,
    y: usize,
    position: Option<&usize>,
    (blocked, conflicting): (bool, bool),
    tip: &str,
) -> String {
    let (x0, x1) = layout.span(op);
    let stroke = if conflicting {
        "stroke=\"#b00020\" stroke-width=\"3\""
    } else {
        "stroke=\"#555\""
    };
    let (fill, label) = match position {
        Some(&k) => ("#9fd8a8", format!("{}", k + 1)),
        None if blocked => ("#f28b8b", "X".to_string()),
        None => ("#ddd", String::new()),
    };
    let dash = if op.outcome.is_unknown() {
        " stroke-dasharray=\"3,2\""
    } else {
        ""
    };
    let (w, text_x, text_y) = (x1 - x0, x0 + 3, y + 13);
    // A label that does not fit would spill over its neighbours; the tooltip still has it.
    let label = if w >= LABEL_CHAR_PX * label.len() + 4 {
        label
    } else {
        String::new()
    };
    format!(
        "<g><title>{}</title><rect x=\"{x0}\" y=\"{y}\" width=\"{w}\" height=\"{BOX_PX}\" \
         rx=\"3\" fill=\"{fill}\" {stroke}{dash}/>\
         <text x=\"{text_x}\" y=\"{text_y}\">{label}</text></g>",
        escape(tip)
    )
}

fn steps_table<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &PartitionReport,
    states: &[M::State],
    numbering: Numbering<'_>,
    notes: &Notes,
) -> String {
    let note = |i: usize| {
        notes
            .per_op
            .get(&numbering.of(i))
            .map_or(String::new(), |n| format!(" ({n})"))
    };
    let describe_op = |model: &M, history: &[Operation<M::Input, M::Output>], i: usize| {
        describe_numbered(model, &history[i], numbering.of(i))
    };
    let heading = match report.verdict {
        Verdict::Ok => "Linearization",
        _ => "Longest linearizable prefix",
    };
    let mut html = format!("<table><tr><th>#</th><th>{heading}</th><th>state after</th></tr>");
    let _ = write!(
        html,
        "<tr><td></td><td>(initial)</td><td>{}</td></tr>",
        escape(&model.describe_state(&model.init()))
    );
    for (k, &i) in report.linearization.iter().enumerate() {
        let state = states.get(k).map_or_else(
            || "(replay failed)".to_string(),
            |s| model.describe_state(s),
        );
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            k + 1,
            escape(&format!("{}{}", describe_op(model, history, i), note(i))),
            escape(&state)
        );
    }
    if let Some(b) = report
        .blocked
        .filter(|_| report.verdict == Verdict::Illegal)
    {
        let before = states.last().cloned().unwrap_or_else(|| model.init());
        let op = &history[b];
        let after = match model.step(&before, &op.input, op.output()) {
            Some(s) => format!(
                "{} (allowed here, but no continuation from it succeeds)",
                model.describe_state(&s)
            ),
            None => "none: the model does not allow this output here".to_string(),
        };
        let ignoring = model
            .step(&before, &op.input, None)
            .map_or_else(|| "none".to_string(), |s| model.describe_state(&s));
        let _ = write!(
            html,
            "<tr class=\"blocked\"><td>X</td><td>first operation that cannot be linearized: \
             {}</td><td>before: {}<br>after: {}<br>(if its output were unknown: {})</td></tr>",
            escape(&format!("{}{}", describe_op(model, history, b), note(b))),
            escape(&model.describe_state(&before)),
            escape(&after),
            escape(&ignoring)
        );
    }
    html.push_str("</table>\n");
    html
}

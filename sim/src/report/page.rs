//! HTML for a failure report: the failure itself, and the cluster timeline around it (one row
//! per node coloured by role with its term, partitions above, the failing moment marked) with
//! a table of what happened in that window.

use super::timeline::{NodeState, Timeline};
use std::fmt::Write as _;
use std::time::Duration;

const WIDTH_PX: f64 = 1400.0;
const LABEL_PX: f64 = 120.0;
const ROW_PX: usize = 22;
/// Most rows of the moments table (the full log is one `--trace` away).
const MOMENTS_MAX: usize = 400;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
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

fn colour(state: &NodeState) -> (&'static str, &'static str) {
    match state {
        NodeState::Running("leader") => ("#2e7d32", "#fff"),
        NodeState::Running("candidate") => ("#f9a825", "#000"),
        NodeState::Running("pre-candidate") => ("#fff176", "#000"),
        NodeState::Running(_) => ("#bbdefb", "#000"),
        NodeState::Paused => ("#b0bec5", "#000"),
        NodeState::Down => ("#424242", "#fff"),
    }
}

fn secs(t: Duration) -> String {
    format!("{:.3}s", t.as_secs_f64())
}

/// The section showing `timeline` over `window`, with `failure_at` marked.
pub fn timeline_section(
    timeline: &Timeline,
    window: (Duration, Duration),
    failure_at: Option<Duration>,
) -> String {
    let (w0, w1) = window;
    let span = (w1.saturating_sub(w0)).as_secs_f64().max(1e-6);
    let x = |t: Duration| {
        let t = t.clamp(w0, w1);
        LABEL_PX + (t - w0).as_secs_f64() / span * (WIDTH_PX - LABEL_PX - 10.0)
    };
    let mut groups: Vec<Option<u64>> = timeline.partitions.iter().map(|p| p.group).collect();
    groups.dedup();
    groups.sort_unstable();
    groups.dedup();
    let rows = groups.len() + timeline.nodes.len();
    let height = rows * ROW_PX + 30;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH_PX}\" height=\"{height}\" \
         font-size=\"11\" font-family=\"monospace\">"
    );
    let mut row = 0;
    for group in &groups {
        let y = row * ROW_PX + 4;
        let label = match group {
            Some(g) => format!("partitions g{g}"),
            None => "partitions".to_string(),
        };
        let _ = write!(svg, "<text x=\"2\" y=\"{}\">{label}</text>", y + 13);
        for p in timeline.partitions.iter().filter(|p| &p.group == group) {
            if p.to < w0 || p.from > w1 {
                continue;
            }
            let (x0, x1) = (x(p.from), x(p.to));
            let _ = write!(
                svg,
                "<g><title>partition {} from {} to {}</title><rect x=\"{x0:.1}\" y=\"{y}\" \
                 width=\"{:.1}\" height=\"16\" fill=\"#ff8a65\" stroke=\"#555\"/></g>",
                escape(&p.what),
                secs(p.from),
                secs(p.to),
                (x1 - x0).max(2.0)
            );
        }
        row += 1;
    }
    for (id, segments) in &timeline.nodes {
        let y = row * ROW_PX + 4;
        let _ = write!(svg, "<text x=\"2\" y=\"{}\">n{id}</text>", y + 13);
        for s in segments {
            if s.to < w0 || s.from > w1 {
                continue;
            }
            let (x0, x1) = (x(s.from), x(s.to));
            let w = (x1 - x0).max(1.0);
            let (fill, ink) = colour(&s.state);
            let term = s
                .term
                .as_deref()
                .map_or(String::new(), |t| format!(" term {t}"));
            let _ = write!(
                svg,
                "<g><title>n{id} {}{term} from {} to {}</title><rect x=\"{x0:.1}\" y=\"{y}\" \
                 width=\"{w:.1}\" height=\"16\" fill=\"{fill}\" stroke=\"#777\"/>",
                s.state.name(),
                secs(s.from),
                secs(s.to)
            );
            if let Some(t) = &s.term {
                if w > 8.0 * (t.len() as f64 + 1.0) && matches!(s.state, NodeState::Running(_)) {
                    let _ = write!(
                        svg,
                        "<text x=\"{:.1}\" y=\"{}\" fill=\"{ink}\">t{}</text>",
                        x0 + 3.0,
                        y + 12,
                        escape(t)
                    );
                }
            }
            svg.push_str("</g>");
        }
        row += 1;
    }
    let axis_y = rows * ROW_PX + 20;
    let step = tick_step(span);
    let mut t = (w0.as_secs_f64() / step).ceil() * step;
    while t <= w1.as_secs_f64() {
        let tx = x(Duration::from_secs_f64(t));
        let _ = write!(
            svg,
            "<line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"0\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{axis_y}\">{t:.2}s</text>",
            rows * ROW_PX + 6,
            tx - 14.0
        );
        t += step;
    }
    if let Some(at) = failure_at.filter(|at| (w0..=w1).contains(at)) {
        let fx = x(at);
        let _ = write!(
            svg,
            "<g><title>the failure, at {}</title><line x1=\"{fx:.1}\" x2=\"{fx:.1}\" y1=\"0\" \
             y2=\"{}\" stroke=\"#b00020\" stroke-width=\"2\"/></g>",
            secs(at),
            rows * ROW_PX + 6
        );
    }
    svg.push_str("</svg>");
    let mut html = format!(
        "<h2>Cluster timeline, {} to {} (simulated)</h2>\n<div class=\"legend\">\
         <span style=\"background:#2e7d32;color:#fff\">leader</span>\
         <span style=\"background:#f9a825\">candidate</span>\
         <span style=\"background:#fff176\">pre-candidate</span>\
         <span style=\"background:#bbdefb\">follower</span>\
         <span style=\"background:#b0bec5\">paused</span>\
         <span style=\"background:#424242;color:#fff\">down</span>\
         <span style=\"background:#ff8a65\">partition</span>\
         <span style=\"border-left:2px solid #b00020\">the failure</span></div>\n\
         <div class=\"timeline\">{svg}</div>\n",
        secs(w0),
        secs(w1)
    );
    let moments: Vec<_> = timeline
        .moments
        .iter()
        .filter(|m| (w0..=w1).contains(&m.at))
        .collect();
    let _ = write!(
        html,
        "<h3>What happened in this window ({} events{})</h3><table><tr><th>time</th>\
         <th>node</th><th>event</th></tr>",
        moments.len(),
        if moments.len() > MOMENTS_MAX {
            format!(", the first {MOMENTS_MAX} shown")
        } else {
            String::new()
        }
    );
    for m in moments.iter().take(MOMENTS_MAX) {
        let blocked = failure_at == Some(m.at) && m.text.starts_with("seed failed");
        let _ = write!(
            html,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td></tr>",
            if blocked { " class=\"blocked\"" } else { "" },
            secs(m.at),
            m.node.map_or(String::new(), |n| format!("n{n}")),
            escape(&m.text)
        );
    }
    html.push_str("</table>\n");
    html
}

/// A tick spacing that gives about 10 ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    let raw = span / 10.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(raw)
}

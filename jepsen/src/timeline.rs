//! `timeline.svg`: one dot per client operation at (invocation time, latency), coloured by
//! outcome, over shaded fault windows, so a person sees at a glance what each fault did.
//!
//! Written by hand as plain SVG: the picture is simple and a plotting dependency would outweigh
//! the rest of the harness.

use std::fmt::Write as _;

use crate::history::{OpType, Pair};

const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 140.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;
/// Beyond this many operations only every n-th is drawn, to keep the file small.
const MAX_DOTS: usize = 40_000;

/// Latency axis bounds in milliseconds (log scale).
const MIN_MS: f64 = 0.1;

fn colour(kind: OpType) -> &'static str {
    match kind {
        OpType::Ok => "#2a9d4f",
        OpType::Fail => "#d62728",
        _ => "#ff9f1c",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A fault window: from a nemesis `start-X` to the matching `stop-X` (or the end).
struct Window {
    from: u64,
    to: u64,
    label: String,
}

fn windows(ps: &[Pair<'_>], end: u64) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    let mut open: Vec<(String, u64, String)> = Vec::new();
    for p in ps.iter().filter(|p| p.process().is_nemesis()) {
        let f = p.f();
        if let Some(fault) = f.strip_prefix("start-") {
            let target = p
                .value()
                .get("nodes")
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            open.push((
                fault.to_string(),
                p.invoke_time(),
                format!("{fault}{target}"),
            ));
        } else if let Some(fault) = f.strip_prefix("stop-") {
            if let Some(i) = open.iter().position(|(x, _, _)| x == fault) {
                let (_, from, label) = open.remove(i);
                out.push(Window {
                    from,
                    to: p.complete_time().min(end),
                    label,
                });
            }
        }
    }
    out.extend(open.into_iter().map(|(_, from, label)| Window {
        from,
        to: end,
        label,
    }));
    out
}

/// Renders the timeline of a history.
pub fn render(ps: &[Pair<'_>], title: &str) -> String {
    let end = ps
        .iter()
        .flat_map(|p| [p.invoke_time(), p.complete.map_or(0, |c| c.time)])
        .max()
        .unwrap_or(0)
        .max(1);
    let ops: Vec<&Pair<'_>> = ps.iter().filter(|p| !p.process().is_nemesis()).collect();
    let latency_ms = |p: &Pair<'_>| (p.complete_time().min(end) - p.invoke_time()) as f64 / 1e6;
    let max_ms = ops
        .iter()
        .map(|p| latency_ms(p))
        .fold(10.0_f64, f64::max)
        .max(MIN_MS * 10.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: u64| LEFT + plot_w * t as f64 / end as f64;
    let (lo, hi) = (MIN_MS.log10(), max_ms.log10());
    let y = |ms: f64| TOP + plot_h * (1.0 - (ms.max(MIN_MS).log10() - lo) / (hi - lo));

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="14">{}</text>"#,
        escape(title)
    );
    for (i, w) in windows(ps, end).iter().enumerate() {
        let (x0, x1) = (x(w.from), x(w.to));
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#888" fill-opacity="0.18"><title>{}</title></rect>"##,
            (x1 - x0).max(1.0),
            escape(&w.label)
        );
        let ly = TOP + 10.0 + 11.0 * (i % 4) as f64;
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{ly}" fill="#555">{}</text>"##,
            x0 + 2.0,
            escape(&w.label)
        );
    }
    // Axes: seconds along x, log-scale milliseconds up y.
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT} {TOP} V{} H{}" stroke="black" fill="none"/>"#,
        TOP + plot_h,
        LEFT + plot_w
    );
    let mut decade = lo.floor() as i32;
    while f64::from(decade) <= hi {
        let ms = 10f64.powi(decade);
        if ms >= MIN_MS {
            let yy = y(ms);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{ms} ms</text>"##,
                LEFT + plot_w,
                LEFT - 4.0,
                yy + 4.0
            );
        }
        decade += 1;
    }
    let secs = end as f64 / 1e9;
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]
        .into_iter()
        .find(|st| secs / st <= 12.0)
        .unwrap_or(600.0);
    let mut t = 0.0;
    while t <= secs {
        let xx = x((t * 1e9) as u64);
        let _ = writeln!(
            s,
            r#"<text x="{xx:.1}" y="{}" text-anchor="middle">{t}s</text>"#,
            TOP + plot_h + 15.0
        );
        t += step;
    }
    let stride = ops.len().div_ceil(MAX_DOTS).max(1);
    for p in ops.iter().step_by(stride) {
        let _ = writeln!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{}"><title>{} {} {:.1} ms</title></circle>"#,
            x(p.invoke_time()),
            y(latency_ms(p)),
            colour(p.kind()),
            escape(p.f()),
            match p.kind() {
                OpType::Ok => "ok",
                OpType::Fail => "fail",
                _ => "info",
            },
            latency_ms(p)
        );
    }
    let lx = LEFT + plot_w + 15.0;
    for (i, (kind, name)) in [
        (OpType::Ok, "ok"),
        (OpType::Fail, "fail"),
        (OpType::Info, "info"),
    ]
    .iter()
    .enumerate()
    {
        let ly = TOP + 15.0 * i as f64 + 10.0;
        let _ = writeln!(
            s,
            r#"<circle cx="{lx}" cy="{ly}" r="4" fill="{}"/><text x="{}" y="{}">{name}</text>"#,
            colour(*kind),
            lx + 8.0,
            ly + 4.0
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="{}" width="10" height="10" fill="#888" fill-opacity="0.3"/><text x="{}" y="{}">fault</text>"##,
        lx - 5.0,
        TOP + 50.0,
        lx + 8.0,
        TOP + 59.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pairs, Builder};
    use serde_json::json;

    #[test]
    fn draws_ops_and_fault_windows() {
        let mut b = Builder::new();
        b.invoke("nemesis", "start-kill", json!({"nodes": [2]}))
            .info("nemesis", "start-kill", json!({"nodes": [2]}), "killed")
            .done(0, "send", json!(null), json!(null))
            .invoke(1, "poll", json!(null))
            .info(1, "poll", json!(null), "timeout")
            .invoke("nemesis", "stop-kill", json!({"nodes": [2]}))
            .info("nemesis", "stop-kill", json!({"nodes": [2]}), "restarted");
        let ps = pairs(&b.ops).unwrap();
        let svg = render(&ps, "queue <kill>");
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>kill [2]</title>").count(), 1);
        assert!(svg.contains("queue &lt;kill&gt;"));
        assert!(svg.contains("#ff9f1c"), "the info op is drawn");
    }
}

//! `load --html FILE`: the report as one self-contained HTML page (no script, no font, no
//! network), its charts drawn as inline SVG from the report's [`Series`].
//!
//! The SVG is written by hand rather than with a plotting crate: the charts are lines and bars
//! on a time axis, about 200 lines here, while `plotters` would add a dependency tree for the
//! same output and make each chart's elements (titles, marks) harder to control and test.

use std::fmt::Write;

use super::report::LoadReport;
use super::series::{Mark, Series, SeriesPoint};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;

/// Colours of the lines, in order.
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// One line of a chart.
struct Line<'a> {
    name: &'a str,
    values: Vec<f64>,
}

/// Renders `report` as an HTML page; `parameters` are the run's settings as the user gave them.
pub fn render(report: &LoadReport, parameters: &[(String, String)]) -> String {
    let series = &report.series;
    let ts: Vec<f64> = series.points.iter().map(|p| p.t as f64).collect();
    let per_s = |f: fn(&SeriesPoint) -> f64| -> Vec<f64> {
        (series.points.iter())
            .map(|p| f(p) / p.span_s.max(1e-3))
            .collect()
    };
    let of = |f: fn(&SeriesPoint) -> f64| -> Vec<f64> { series.points.iter().map(f).collect() };
    let mut page = String::with_capacity(64 * 1024);
    let verdict = report.thresholds.passed && report.benchmark.pass;
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Load report: {scenario} against {target}</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>Load report: {scenario} against {target}</h1>\n",
        scenario = escape(&report.scenario),
        target = escape(&report.target),
    );
    let _ = write!(
        page,
        "<section id=\"verdict\" class=\"{class}\"><h2>Verdict: {word}</h2><ul>",
        class = if verdict { "pass" } else { "fail" },
        word = if verdict { "PASS" } else { "FAIL" },
    );
    let c = &report.messages.checked;
    let _ = write!(
        page,
        "<li>checker: {} delivered, {} lost, {} duplicated, {} reordered, {} unexpected \
         ({} allowed gaps, {} indeterminate, {} unresolved)</li>\
         <li>benchmark rule: {}</li><li>thresholds: {}</li>",
        c.delivered,
        c.lost,
        c.duplicated,
        c.reordered,
        c.unexpected,
        c.allowed_gap,
        c.indeterminate,
        report.messages.unresolved,
        if report.benchmark.pass {
            "pass"
        } else {
            "fail"
        },
        if report.thresholds.failures.is_empty() {
            "passed".to_owned()
        } else {
            escape(&report.thresholds.failures.join("; "))
        },
    );
    if let Some(p) = &report.pacing {
        // Offered vs achieved (issue 10): a saturated run says so beside the verdict.
        let _ = write!(
            page,
            "<li>pacing{}: {} ({} late, {} skipped, window {})</li>",
            if p.saturated { " (SATURATED)" } else { "" },
            escape(&p.verdict()),
            p.late,
            p.skipped,
            p.max_in_flight,
        );
    }
    page.push_str("</ul></section>\n");

    page.push_str("<section id=\"charts\"><h2>Over time</h2>\n<p class=\"note\">t = 0 is the workload's start (the ramp-up is before it); dashed red lines are chaos rounds.</p>\n");
    let charts = [
        (
            "Delivery latency (ms)",
            vec![
                Line {
                    name: "p50",
                    values: of(|p| p.latency.p50_ms),
                },
                Line {
                    name: "p99",
                    values: of(|p| p.latency.p99_ms),
                },
                Line {
                    name: "max",
                    values: of(|p| p.latency.max_ms),
                },
            ],
        ),
        (
            "Throughput (messages per second)",
            vec![
                Line {
                    name: "sent",
                    values: per_s(|p| p.sent as f64),
                },
                Line {
                    name: "delivered",
                    values: per_s(|p| p.delivered as f64),
                },
            ],
        ),
        (
            "Connected clients",
            vec![Line {
                name: "connected",
                values: of(|p| p.connected as f64),
            }],
        ),
        (
            "Recoveries, reconnects and errors (per second)",
            vec![
                Line {
                    name: "recoveries",
                    values: per_s(|p| p.recoveries as f64),
                },
                Line {
                    name: "reconnects",
                    values: per_s(|p| p.reconnects as f64),
                },
                Line {
                    name: "errors",
                    values: per_s(|p| p.error_total() as f64),
                },
            ],
        ),
        (
            "Process: CPU (% of one core) and RSS (MiB)",
            vec![
                Line {
                    name: "CPU %",
                    values: per_s(|p| p.cpu_s * 100.0),
                },
                Line {
                    name: "RSS MiB",
                    values: of(|p| p.rss_mib),
                },
            ],
        ),
    ];
    for (title, lines) in &charts {
        line_chart(&mut page, title, &ts, lines, &series.marks);
    }
    latency_histogram(&mut page, series);
    page.push_str("</section>\n");

    page.push_str("<section id=\"summary\"><h2>Summary</h2><table>\n");
    // The table is the text report's rows (`  key  value`), so both always say the same.
    let text = report.to_string();
    for line in text.lines().skip(1) {
        let (key, value) = line.trim_start().split_at(line.trim_start().len().min(22));
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(key.trim()),
            escape(value.trim())
        );
    }
    page.push_str("</table>\n");
    if let Some(first) = text.lines().next() {
        let _ = writeln!(page, "<p>{}</p>", escape(first));
    }
    page.push_str("</section>\n<section id=\"parameters\"><h2>Parameters</h2><table>\n");
    for (name, value) in parameters {
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    let _ = writeln!(
        page,
        "<tr><th>report schema</th><td>{}</td></tr></table></section>\n</body></html>",
        report.schema_version.0
    );
    page
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:960px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px}\
#verdict{padding:8px 16px;border-radius:6px}#verdict.pass{background:#e3f5e1}#verdict.fail{background:#fbe3e3}\
table{border-collapse:collapse}th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #ddd;vertical-align:top}\
th{white-space:nowrap}svg{display:block;margin:12px 0;background:#fff}\
.axis{stroke:#444}.grid{stroke:#e4e4e4}.mark{stroke:#d62728;stroke-dasharray:4 3}\
.start{stroke:#888;stroke-dasharray:2 2}text{font-size:11px;fill:#333}.title{font-size:14px;font-weight:bold}\
.note{color:#555;font-size:13px}";

/// Escapes text for HTML and SVG.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
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

/// A round step for about `target` ticks over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = (span / target).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(f64::MIN_POSITIVE)
}

fn label(v: f64) -> String {
    if v.abs() >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A line chart over the series' seconds, with the chaos marks and the workload's start.
fn line_chart(page: &mut String, title: &str, ts: &[f64], lines: &[Line<'_>], marks: &[Mark]) {
    let _ = write!(
        page,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
         <text class=\"title\" x=\"{LEFT}\" y=\"20\">{t}</text>",
        t = escape(title)
    );
    let (x0, x1) = match (ts.first(), ts.last()) {
        (Some(&a), Some(&b)) if b > a => (a, b),
        (Some(&a), _) => (a - 1.0, a + 1.0),
        _ => {
            page.push_str("<text x=\"70\" y=\"80\">no samples: the run was shorter than a second</text></svg>\n");
            return;
        }
    };
    let y_max = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 5.0);
    let y1 = (y_max / y_step).ceil().max(1.0) * y_step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| LEFT + (t - x0) / (x1 - x0) * plot_w;
    let y = |v: f64| TOP + plot_h - v / y1 * plot_h;
    // Grid and labels.
    let mut v = 0.0;
    while v <= y1 + y_step / 2.0 {
        let _ = write!(
            page,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            label(v),
            yy = y(v)
        );
        v += y_step;
    }
    let x_step = nice_step(x1 - x0, 10.0).max(1.0);
    let mut t = (x0 / x_step).ceil() * x_step;
    while t <= x1 {
        let _ = write!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(t),
            TOP + plot_h + 16.0,
            label(t)
        );
        t += x_step;
    }
    let _ = write!(
        page,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds from the workload's start</text>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{b:.1}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{b:.1}\" y2=\"{b:.1}\"/>",
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        WIDTH - RIGHT,
        b = TOP + plot_h
    );
    if (x0..=x1).contains(&0.0) {
        let _ = write!(
            page,
            "<line class=\"start\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"><title>workload starts</title></line>",
            TOP + plot_h,
            xx = x(0.0)
        );
    }
    for mark in marks.iter().filter(|m| (x0..=x1).contains(&m.t_s)) {
        let _ = write!(
            page,
            "<line class=\"mark\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"><title>{} at {:.1} s: {}</title></line>",
            TOP + plot_h,
            escape(&mark.kind),
            mark.t_s,
            escape(&mark.detail),
            xx = x(mark.t_s)
        );
    }
    for (i, line) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = (ts.iter().zip(&line.values))
            .filter(|(_, v)| v.is_finite())
            .map(|(&t, &v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let _ = write!(
            page,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\" points=\"{}\"><title>{}</title></polyline>\
             <rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            points.join(" "),
            escape(line.name),
            TOP - 26.0 + 14.0 - 10.0,
            LEFT + plot_w - 360.0 + 110.0 * i as f64 + 14.0,
            TOP - 26.0 + 14.0,
            escape(line.name),
            lx = LEFT + plot_w - 360.0 + 110.0 * i as f64,
        );
    }
    page.push_str("</svg>\n");
}

/// Bars of the whole run's delivery latency, one per quarter-octave bucket.
fn latency_histogram(page: &mut String, series: &Series) {
    let latency = series.latency();
    let title = format!("Delivery latency histogram ({} deliveries)", latency.count);
    let _ = write!(
        page,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
         <text class=\"title\" x=\"{LEFT}\" y=\"20\">{t}</text>",
        t = escape(&title)
    );
    let most = latency.buckets.iter().map(|b| b.1).max().unwrap_or(0);
    if most == 0 {
        page.push_str("<text x=\"70\" y=\"80\">no deliveries measured</text></svg>\n");
        return;
    }
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / latency.buckets.len() as f64;
    let every = (latency.buckets.len() / 12).max(1);
    for (i, &(upper_us, n)) in latency.buckets.iter().enumerate() {
        let h = n as f64 / most as f64 * plot_h;
        let upper_ms = upper_us as f64 / 1000.0;
        let _ = write!(
            page,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#1f77b4\">\
             <title>up to {upper_ms:.3} ms: {n}</title></rect>",
            LEFT + slot * i as f64 + 1.0,
            TOP + plot_h - h,
            (slot - 2.0).max(1.0),
        );
        if i % every == 0 {
            let _ = write!(
                page,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                LEFT + slot * (i as f64 + 0.5),
                TOP + plot_h + 16.0,
                if upper_ms >= 10.0 {
                    format!("{upper_ms:.0}")
                } else {
                    format!("{upper_ms:.2}")
                }
            );
        }
    }
    let _ = writeln!(
        page,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">latency up to (ms), quarter-octave buckets</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{most}</text>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{b:.1}\" y2=\"{b:.1}\"/></svg>",
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        LEFT - 6.0,
        TOP + 4.0,
        WIDTH - RIGHT,
        b = TOP + plot_h
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::series::SecondLatency;

    fn report() -> LoadReport {
        let point = |t: i64, p99: f64| SeriesPoint {
            t,
            phase: "run".into(),
            span_s: 1.0,
            sources: 1,
            connected: 10,
            sent: 100,
            delivered: 90,
            latency: SecondLatency {
                count: 90,
                p50_ms: 1.0,
                p99_ms: p99,
                max_ms: 9.0,
                buckets: vec![(1024, 80), (8192, 10)],
            },
            ..SeriesPoint::default()
        };
        let mut report = LoadReport {
            scenario: "groups <&>".into(),
            target: "local hub".into(),
            ..LoadReport::default()
        };
        report.series.points = vec![point(-1, 2.0), point(0, 3.0), point(1, 4.0)];
        report.series.marks = vec![Mark {
            t_s: 0.5,
            kind: "chaos".into(),
            detail: "drop 5% of connections".into(),
        }];
        report
    }

    #[test]
    fn the_page_has_every_chart_the_verdict_and_escaped_text() {
        let page = render(&report(), &[("clients".into(), "10".into())]);
        for title in [
            "Delivery latency (ms)",
            "Throughput (messages per second)",
            "Connected clients",
            "Recoveries, reconnects and errors (per second)",
            "Delivery latency histogram (270 deliveries)",
        ] {
            assert!(
                page.contains(&format!("<title>{}</title>", escape(title))),
                "{title}"
            );
        }
        assert_eq!(page.matches("<svg").count(), 6);
        assert_eq!(
            page.matches("class=\"mark\"").count(),
            5,
            "the chaos mark on each time chart"
        );
        assert!(page.contains("Verdict: FAIL"));
        assert!(!page.contains("pacing"), "no schedule, no pacing line");
        let mut saturated = report();
        saturated.pacing = Some(crate::load::PacingReport {
            offered_per_s: 60.0,
            achieved_per_s: 50.0,
            saturated: true,
            ..crate::load::PacingReport::default()
        });
        let paced = render(&saturated, &[]);
        assert!(
            paced.contains("pacing (SATURATED): saturated: offered 60/s, achieved 50/s"),
            "{paced}"
        );
        assert!(page.contains("groups &lt;&amp;&gt;") && !page.contains("groups <&>"));
        assert!(page.contains("<th>clients</th><td>10</td>"));
        assert!(
            !page.contains("<script"),
            "no script: nothing to fail or to fetch"
        );
        assert!(
            !page.contains("http://")
                || !page
                    .replace("http://www.w3.org/2000/svg", "")
                    .contains("http://")
        );
    }

    #[test]
    fn an_empty_series_still_renders() {
        let page = render(&LoadReport::default(), &[]);
        assert!(page.contains("no samples") && page.contains("no deliveries measured"));
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.3, 5.0), 0.1);
    }
}

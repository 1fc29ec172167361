//! `report.html`: one self-contained page that explains a run to a human: key facts, warnings
//! first, then one section per topic with text, tables and plots, and the resolved plan.
//!
//! The page has to survive being mailed, attached to an issue or opened years later from an
//! archive, so it loads nothing: the CSS is inline, plots are embedded as base64 `data:` URIs,
//! and there is no script. It is also print-friendly (A4/Letter, figures not split across
//! pages). Every string from the input is HTML-escaped, because titles, error messages and
//! plan values come from user files and remote servers.
//!
//! The renderer knows nothing about statistics: callers describe the content with
//! [`ReportInput`], [`Section`], [`Table`] and [`PlotRef`], and [`write_report`] lays it out.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Result, ResultsError};
use crate::plot::AllPlots;

/// File name of the report.
pub const REPORT_HTML: &str = "report.html";

/// Everything the report shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportInput {
    /// Page heading, e.g. the experiment's name.
    pub title: String,
    /// The run's identifier (its directory name).
    pub run_id: String,
    /// When the run was created, as the caller wants it shown (e.g. RFC 3339).
    pub created: String,
    /// Provider name, e.g. `local` or `aws`.
    pub provider: String,
    /// The experiment file the run was started from.
    pub experiment_file: String,
    /// Short facts shown under the heading, as label and value.
    pub key_facts: Vec<(String, String)>,
    /// Run-level warnings, shown at the top.
    pub warnings: Vec<String>,
    /// The body of the report, in order.
    pub sections: Vec<Section>,
    /// The resolved plan (`plan.json`), shown collapsed at the end.
    pub plan_json: Option<String>,
}

/// One section of the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Section heading.
    pub heading: String,
    /// Warnings about this section; shown at the top of the page and of the section.
    pub warnings: Vec<String>,
    /// Paragraphs of plain text.
    pub paragraphs: Vec<String>,
    /// Tables, after the paragraphs.
    pub tables: Vec<Table>,
    /// Plots, after the tables.
    pub plots: Vec<PlotRef>,
}

/// A table. Columns whose cells all start with a number are right-aligned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Caption shown above the table.
    pub caption: String,
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells; short rows are padded with empty cells.
    pub rows: Vec<Vec<String>>,
}

/// A plot image to embed (PNG, or SVG).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlotRef {
    /// Caption shown under the image.
    pub caption: String,
    /// The image file; it is read and embedded when the report is rendered.
    pub png_path: PathBuf,
}

impl PlotRef {
    /// One reference per plot of `plots`, with the standard captions, in report order.
    pub fn for_plots(plots: &AllPlots) -> Vec<Self> {
        plots
            .entries()
            .into_iter()
            .map(|(kind, files)| Self {
                caption: kind.caption().to_owned(),
                png_path: files.png.clone(),
            })
            .collect()
    }
}

/// Escapes `s` for use in HTML text and in double- or single-quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Renders `input` as `out` (parent directories are created). The file is written under a
/// temporary name first and renamed, so a crash never leaves a half-written report.
///
/// Fails when a plot cannot be read or is neither PNG nor SVG, or when writing fails; the
/// error names the file.
pub fn write_report(input: &ReportInput, out: &Path) -> Result<()> {
    let html = render_report(input)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)
            .map_err(|e| ResultsError::io(parent, "create directory", e))?;
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs_err::write(&tmp, html).map_err(|e| ResultsError::io(&tmp, "write", e))?;
    fs_err::rename(&tmp, out).map_err(|e| ResultsError::io(out, "write", e))?;
    Ok(())
}

/// The report as an HTML string (what [`write_report`] writes).
pub fn render_report(input: &ReportInput) -> Result<String> {
    let mut h = String::with_capacity(64 * 1024);
    let title = if input.title.trim().is_empty() {
        "stellar run report"
    } else {
        input.title.as_str()
    };
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<meta name=\"generator\" content=\"stellar\">\n");
    let _ = writeln!(
        h,
        "<title>{}{}</title>",
        escape_html(title),
        if input.run_id.is_empty() {
            String::new()
        } else {
            format!(" · {}", escape_html(&input.run_id))
        }
    );
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>\n<main>");

    // Heading and run identity.
    let _ = writeln!(h, "<header>\n<h1>{}</h1>", escape_html(title));
    let meta: Vec<String> = [
        ("Run", &input.run_id, true),
        ("Created", &input.created, false),
        ("Provider", &input.provider, false),
        ("Experiment", &input.experiment_file, true),
    ]
    .into_iter()
    .filter(|(_, v, _)| !v.is_empty())
    .map(|(k, v, code)| {
        let v = escape_html(v);
        let v = if code { format!("<code>{v}</code>") } else { v };
        format!("<span><b>{k}</b> {v}</span>")
    })
    .collect();
    if !meta.is_empty() {
        let _ = writeln!(h, "<p class=\"meta\">{}</p>", meta.join(""));
    }
    h.push_str("</header>\n");

    render_warning_banner(&mut h, input);

    if !input.key_facts.is_empty() {
        h.push_str("<dl class=\"facts\">\n");
        for (k, v) in &input.key_facts {
            let _ = writeln!(
                h,
                "<div><dt>{}</dt><dd>{}</dd></div>",
                escape_html(k),
                escape_html(v)
            );
        }
        h.push_str("</dl>\n");
    }

    if input.sections.len() > 1 {
        h.push_str("<nav class=\"toc\"><h2>Contents</h2><ol>\n");
        for (i, s) in input.sections.iter().enumerate() {
            let _ = writeln!(
                h,
                "<li><a href=\"#{}\">{}</a></li>",
                section_id(i),
                escape_html(&s.heading)
            );
        }
        if input.plan_json.is_some() {
            h.push_str("<li><a href=\"#plan\">Resolved plan</a></li>\n");
        }
        h.push_str("</ol></nav>\n");
    }

    let mut figure_no = 0usize;
    for (i, s) in input.sections.iter().enumerate() {
        render_section(&mut h, i, s, &mut figure_no)?;
    }

    if let Some(plan) = &input.plan_json {
        let _ = writeln!(
            h,
            "<section id=\"plan\">\n<h2>Resolved plan</h2>\n<details>\
             <summary>plan.json ({} lines): click to expand</summary>\n\
             <pre><code>{}</code></pre>\n</details>\n</section>",
            plan.lines().count(),
            escape_html(plan)
        );
    }
    h.push_str(
        "<footer>Generated by stellar. This page is self-contained: styles and plots are \
         embedded, nothing is loaded from elsewhere.</footer>\n</main>\n</body>\n</html>\n",
    );
    Ok(h)
}

fn section_id(i: usize) -> String {
    format!("s{}", i + 1)
}

/// All warnings (run-level first, then per section, labelled) in a banner at the top.
fn render_warning_banner(h: &mut String, input: &ReportInput) {
    let count = input.warnings.len()
        + input
            .sections
            .iter()
            .map(|s| s.warnings.len())
            .sum::<usize>();
    if count == 0 {
        return;
    }
    let _ = writeln!(
        h,
        "<section class=\"warnings\" role=\"alert\">\n<h2>{} {}</h2>\n<ul>",
        count,
        if count == 1 { "warning" } else { "warnings" }
    );
    for w in &input.warnings {
        let _ = writeln!(h, "<li>{}</li>", escape_html(w));
    }
    for (i, s) in input.sections.iter().enumerate() {
        for w in &s.warnings {
            let _ = writeln!(
                h,
                "<li><a href=\"#{}\">{}</a>: {}</li>",
                section_id(i),
                escape_html(&s.heading),
                escape_html(w)
            );
        }
    }
    h.push_str("</ul>\n</section>\n");
}

fn render_section(h: &mut String, i: usize, s: &Section, figure_no: &mut usize) -> Result<()> {
    let _ = writeln!(
        h,
        "<section id=\"{}\">\n<h2>{}</h2>",
        section_id(i),
        escape_html(&s.heading)
    );
    if !s.warnings.is_empty() {
        h.push_str("<div class=\"callout\" role=\"note\"><ul>\n");
        for w in &s.warnings {
            let _ = writeln!(h, "<li>{}</li>", escape_html(w));
        }
        h.push_str("</ul></div>\n");
    }
    for p in &s.paragraphs {
        let _ = writeln!(h, "<p>{}</p>", escape_html(p));
    }
    for t in &s.tables {
        render_table(h, t);
    }
    for plot in &s.plots {
        *figure_no += 1;
        let uri = data_uri(&plot.png_path)?;
        let alt = if plot.caption.is_empty() {
            plot.png_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            plot.caption.clone()
        };
        let _ = writeln!(
            h,
            "<figure>\n<img src=\"{uri}\" alt=\"{}\">\n<figcaption><b>Figure {}.</b> {}</figcaption>\n</figure>",
            escape_html(&alt),
            figure_no,
            escape_html(&plot.caption)
        );
    }
    h.push_str("</section>\n");
    Ok(())
}

/// Whether a cell reads as a number (possibly signed, with a unit or interval after it).
fn looks_numeric(cell: &str) -> bool {
    let t = cell.trim_start_matches(['+', '-', '−', '~', '≈', '<', '>', '≤', '≥', '±', ' ']);
    t.starts_with(|c: char| c.is_ascii_digit())
        || (t.starts_with('.') && t[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// Cells that say "no value" and do not decide a column's alignment.
fn is_placeholder(cell: &str) -> bool {
    matches!(cell.trim(), "" | "-" | "—" | "–" | "n/a" | "NaN" | "inf")
}

fn render_table(h: &mut String, t: &Table) {
    let width = t
        .rows
        .iter()
        .map(Vec::len)
        .chain([t.header.len()])
        .max()
        .unwrap_or(0);
    let numeric: Vec<bool> = (0..width)
        .map(|c| {
            let mut cells = t
                .rows
                .iter()
                .filter_map(|r| r.get(c))
                .filter(|v| !is_placeholder(v))
                .peekable();
            cells.peek().is_some() && cells.all(|v| looks_numeric(v))
        })
        .collect();
    let class = |c: usize| {
        if numeric[c] { " class=\"num\"" } else { "" }
    };
    h.push_str("<div class=\"table-wrap\"><table>\n");
    if !t.caption.is_empty() {
        let _ = writeln!(h, "<caption>{}</caption>", escape_html(&t.caption));
    }
    if !t.header.is_empty() {
        h.push_str("<thead><tr>");
        for c in 0..width {
            let cell = t.header.get(c).map_or("", String::as_str);
            let _ = write!(
                h,
                "<th scope=\"col\"{}>{}</th>",
                class(c),
                escape_html(cell)
            );
        }
        h.push_str("</tr></thead>\n");
    }
    h.push_str("<tbody>\n");
    for row in &t.rows {
        h.push_str("<tr>");
        for c in 0..width {
            let cell = row.get(c).map_or("", String::as_str);
            let _ = write!(h, "<td{}>{}</td>", class(c), escape_html(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
}

/// Reads an image and returns it as a `data:` URI (PNG or SVG, by content).
fn data_uri(path: &Path) -> Result<String> {
    let bytes = fs_err::read(path).map_err(|e| ResultsError::io(path, "read", e))?;
    let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).contains("<svg") {
        "image/svg+xml"
    } else {
        return Err(ResultsError::io(
            path,
            "embed",
            io::Error::new(io::ErrorKind::InvalidData, "not a PNG or SVG image"),
        ));
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Ok(format!("data:{mime};base64,{b64}"))
}

/// The page's style sheet: system fonts, a readable measure, quiet tables, loud warnings.
const CSS: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg-alt: #f6f8fa;
  --warn-bg: #fff4e5; --warn-line: #d9822b; --warn-fg: #7a3e00; --link: #0b5cad; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 1.9em; margin: 0 0 6px; line-height: 1.2; }
h2 { font-size: 1.35em; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
a { color: var(--link); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.92em; }
.meta { color: var(--muted); margin: 0 0 18px; display: flex; flex-wrap: wrap; gap: 4px 22px; }
.meta b { color: var(--fg); font-weight: 600; margin-right: 4px; }
.warnings { background: var(--warn-bg); border: 1px solid var(--warn-line); border-left: 6px solid var(--warn-line);
  border-radius: 6px; padding: 10px 18px; margin: 16px 0 22px; color: var(--warn-fg); }
.warnings h2 { border: 0; margin: 2px 0 6px; font-size: 1.1em; color: var(--warn-fg); }
.warnings h2::before { content: "\26A0\FE0E  "; }
.warnings ul, .callout ul { margin: 0; padding-left: 20px; }
.warnings a { color: var(--warn-fg); font-weight: 600; }
.callout { background: var(--warn-bg); border-left: 4px solid var(--warn-line); padding: 8px 14px;
  margin: 10px 0 14px; color: var(--warn-fg); border-radius: 4px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; margin: 0 0 10px; }
.facts div { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.facts dt { color: var(--muted); font-size: 0.85em; }
.facts dd { margin: 2px 0 0; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.toc ol { margin: 0; padding-left: 22px; columns: 2; }
.table-wrap { overflow-x: auto; margin: 12px 0 18px; }
table { border-collapse: collapse; font-size: 0.93em; min-width: 50%; }
caption { text-align: left; font-weight: 600; padding: 0 0 6px; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #8c959f; background: var(--bg-alt); white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 18px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.92em; margin-top: 6px; }
details { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; background: var(--bg-alt); }
summary { cursor: pointer; font-weight: 600; }
pre { overflow-x: auto; white-space: pre; margin: 10px 0 4px; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85em; border-top: 1px solid var(--line); padding-top: 10px; }
@media print {
  @page { margin: 14mm; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
  .toc { display: none; }
  h2 { break-after: avoid; }
  figure, table, .warnings, .facts div { break-inside: avoid; }
  tbody tr:nth-child(even) { background: none; }
  figure img { border: 0; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::synthetic_rows;
    use crate::plot::{PlotInput, write_all_plots};

    const HOSTILE: &str = "<script>alert('x')</script>&\"";

    fn table() -> Table {
        Table {
            caption: "Latency".into(),
            header: vec![
                "subset".into(),
                "n".into(),
                "p50 (ms)".into(),
                "note".into(),
            ],
            rows: vec![
                vec![
                    "cold".into(),
                    "10".into(),
                    "612.30 [598.1, 630.2]".into(),
                    "x".into(),
                ],
                vec!["warm".into(), "1,186".into(), "-".into()],
            ],
        }
    }

    fn input_with_plots(dir: &Path) -> (ReportInput, AllPlots) {
        let rows = synthetic_rows();
        let plots = write_all_plots(dir, &PlotInput::new("Synthetic run", &rows)).expect("plots");
        let input = ReportInput {
            title: "Warm and cold".into(),
            run_id: "20240501-120000".into(),
            created: "2024-05-01T12:00:00Z".into(),
            provider: "local".into(),
            experiment_file: "experiments/quickstart.json".into(),
            key_facts: vec![("Requests".into(), "123".into())],
            warnings: vec!["client was saturated".into()],
            sections: vec![
                Section {
                    heading: "Latency".into(),
                    warnings: vec!["only 10 cold samples".into()],
                    paragraphs: vec!["Cold starts dominate the tail.".into()],
                    tables: vec![table()],
                    plots: PlotRef::for_plots(&plots),
                },
                Section {
                    heading: "Fidelity".into(),
                    ..Section::default()
                },
            ],
            plan_json: Some("{\n  \"Provider\": \"local\"\n}".into()),
        };
        (input, plots)
    }

    #[test]
    fn embeds_every_plot_as_a_data_uri() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (input, plots) = input_with_plots(dir.path());
        let out = dir.path().join("sub").join(REPORT_HTML);
        write_report(&input, &out).expect("report");
        let html = fs_err::read_to_string(&out).expect("html");
        assert!(!dir.path().join("sub").join("report.html.tmp").exists());
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 4);
        for (kind, files) in plots.entries() {
            let b64 = base64::engine::general_purpose::STANDARD
                .encode(fs_err::read(&files.png).expect("png"));
            assert!(html.contains(&b64), "{kind:?} not embedded");
            assert!(
                html.contains(&escape_html(kind.caption())),
                "{kind:?} caption"
            );
        }
        assert!(html.contains("Figure 4."));
    }

    #[test]
    fn is_self_contained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (input, _) = input_with_plots(dir.path());
        let html = render_report(&input).expect("render");
        let lower = html.to_ascii_lowercase();
        for needle in [
            "http://",
            "https://",
            "<script",
            "<link",
            "@import",
            "url(",
            "src=\"/",
            "src=\"file",
        ] {
            assert!(!lower.contains(needle), "found {needle:?}");
        }
        assert!(lower.starts_with("<!doctype html>"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn escapes_every_string() {
        let dir = tempfile::tempdir().expect("tempdir");
        let png = dir.path().join("p.png");
        let (_, plots) = input_with_plots(dir.path());
        fs_err::copy(&plots.empirical_cdf.png, &png).expect("copy");
        let h = HOSTILE.to_owned();
        let input = ReportInput {
            title: h.clone(),
            run_id: h.clone(),
            created: h.clone(),
            provider: h.clone(),
            experiment_file: h.clone(),
            key_facts: vec![(h.clone(), h.clone())],
            warnings: vec![h.clone()],
            sections: vec![Section {
                heading: h.clone(),
                warnings: vec![h.clone()],
                paragraphs: vec![h.clone()],
                tables: vec![Table {
                    caption: h.clone(),
                    header: vec![h.clone()],
                    rows: vec![vec![h.clone()]],
                }],
                plots: vec![PlotRef {
                    caption: h.clone(),
                    png_path: png,
                }],
            }],
            plan_json: Some(h.clone()),
        };
        let html = render_report(&input).expect("render");
        assert!(!html.contains("<script"), "unescaped script tag");
        assert!(!html.contains("alert('x')"), "unescaped quote");
        let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;";
        // <title> x2 (title, run id), h1, meta x4, fact x2, banner x3 (run warning, section
        // heading, section warning), no contents list (one section), heading, callout,
        // paragraph, caption, th, td, alt, figcaption, plan.
        assert_eq!(html.matches(escaped).count(), 21);
    }

    #[test]
    fn escape_html_covers_the_special_characters() {
        assert_eq!(
            escape_html("a<b>&\"'c"),
            "a&lt;b&gt;&amp;&quot;&#39;c".to_owned()
        );
        assert_eq!(escape_html("µs ±1"), "µs ±1");
    }

    #[test]
    fn numeric_columns_are_right_aligned() {
        let mut h = String::new();
        render_table(&mut h, &table());
        assert!(h.contains("<th scope=\"col\">subset</th>"));
        assert!(h.contains("<th scope=\"col\" class=\"num\">n</th>"));
        assert!(h.contains("<td class=\"num\">612.30 [598.1, 630.2]</td>"));
        assert!(h.contains("<td class=\"num\">-</td>"));
        assert!(h.contains("<td>x</td>"));
        // The short row is padded to the header's width.
        assert!(h.contains("<td></td></tr>"));
        assert!(looks_numeric("−3.5 ms") && looks_numeric(".5") && looks_numeric("±2"));
        assert!(!looks_numeric("cold") && !looks_numeric(".") && !looks_numeric(""));
    }

    #[test]
    fn warnings_come_first_with_links_to_their_sections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (input, _) = input_with_plots(dir.path());
        let html = render_report(&input).expect("render");
        let banner = html.find("class=\"warnings\"").expect("banner");
        assert!(banner < html.find("<dl class=\"facts\"").expect("facts"));
        assert!(banner < html.find("<section id=\"s1\"").expect("section"));
        assert!(html.contains("<h2>2 warnings</h2>"));
        assert!(html.contains("<li><a href=\"#s1\">Latency</a>: only 10 cold samples</li>"));
        assert!(html.contains("<li><a href=\"#s2\">Fidelity</a></li>"));
        assert!(html.contains("<details><summary>plan.json (3 lines)"));

        let quiet = ReportInput {
            warnings: vec![],
            sections: vec![],
            ..input
        };
        let html = render_report(&quiet).expect("render");
        assert!(!html.contains("class=\"warnings\""));
    }

    #[test]
    fn minimal_input_renders() {
        let html = render_report(&ReportInput::default()).expect("render");
        assert!(html.contains("<h1>stellar run report</h1>"));
        assert!(!html.contains("<details>"));
    }

    #[test]
    fn missing_or_foreign_plot_is_a_typed_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.png");
        let section = |p: &Path| ReportInput {
            sections: vec![Section {
                plots: vec![PlotRef {
                    caption: "c".into(),
                    png_path: p.to_path_buf(),
                }],
                ..Section::default()
            }],
            ..ReportInput::default()
        };
        let err = render_report(&section(&missing)).expect_err("missing");
        assert!(matches!(err, ResultsError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.png"), "{err}");

        let text = dir.path().join("notes.txt");
        fs_err::write(&text, "hello").expect("write");
        let err = render_report(&section(&text)).expect_err("foreign");
        assert!(err.to_string().contains("cannot embed"), "{err}");

        // An SVG is embedded as such.
        let svg = dir.path().join("p.svg");
        fs_err::write(&svg, "<svg xmlns=\"x\"></svg>").expect("write");
        let html = render_report(&section(&svg)).expect("svg");
        assert!(html.contains("data:image/svg+xml;base64,"));
    }
}

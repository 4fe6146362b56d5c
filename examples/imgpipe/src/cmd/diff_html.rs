//! `imgpipe diff --html FILE`: the report as one self-contained page (no script, no style
//! sheet, image or font fetched from anywhere), for CI artefact stores. It is well-formed
//! XHTML: every element closed, every text escaped.

use std::fmt::Write as _;

use imgpipe_repro::ImageDiff;

/// `&`, `<`, `>`, `"` and `'` as entities; control characters (other than tab and line
/// breaks) as U+FFFD, which XML does not allow.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:70em}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;\
text-align:left;vertical-align:top}th{background:#eee}code{font-size:.95em}\
.noise{color:#777}.same{color:#060}.differ{color:#a00}ul{margin:.2em 0}";

/// The page for `rep`, the comparison of `a` with `b`.
pub fn page(rep: &ImageDiff, a: &str, b: &str) -> String {
    let mut h = String::new();
    let verdict = if rep.identical {
        format!("<p class=\"same\">identical ({} bytes)</p>", rep.len_a)
    } else {
        format!(
            "<p class=\"differ\">different: {} bytes differ ({} vs {} bytes)</p>",
            rep.differing_bytes, rep.len_a, rep.len_b
        )
    };
    let _ = write!(
        h,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n\
         <html lang=\"en\">\n<head>\n\
         <meta charset=\"UTF-8\"/>\n<title>imgpipe diff: {ta} vs {tb}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>imgpipe diff</h1>\n\
         <p>A: <code>{ta}</code><br/>B: <code>{tb}</code></p>\n{verdict}\n",
        ta = esc(a),
        tb = esc(b),
    );
    if !rep.differences.is_empty() {
        h.push_str("<h2>Differing byte ranges</h2>\n<table>\n<tr><th>start</th><th>end</th><th>bytes</th><th>in</th></tr>\n");
        for d in &rep.differences {
            let r = d.range;
            let _ = writeln!(
                h,
                "<tr><td>0x{:x}</td><td>0x{:x}</td><td>{}</td><td>{}</td></tr>",
                r.start,
                r.end(),
                r.len,
                esc(&d.regions.join(", "))
            );
        }
        if rep.ranges_omitted > 0 {
            let _ = writeln!(
                h,
                "<tr><td colspan=\"4\">... and {} more ranges</td></tr>",
                rep.ranges_omitted
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(n) = &rep.files {
        h.push_str("<h2>Files</h2>\n");
        let _ = writeln!(h, "<p>Compared: {}</p>", esc(&n.compared.join("; ")));
        if n.differences.is_empty() {
            h.push_str("<p class=\"same\">Every file is identical.</p>\n");
        }
        let mut layer: Option<&[String]> = None;
        for f in &n.differences {
            if layer != Some(f.within.as_slice()) {
                if layer.is_some() {
                    h.push_str("</table>\n");
                }
                let _ = writeln!(
                    h,
                    "<h3>{}</h3>\n<table>\n<tr><th>path</th><th>kind</th><th>A</th><th>B</th><th>what, and why</th></tr>",
                    esc(&f.within.join(" > "))
                );
                layer = Some(f.within.as_slice());
            }
            let value = |v: &serde_json::Value| match v {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => esc(s),
                other => esc(&other.to_string()),
            };
            let kind = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut why = esc(&f.what);
            if let Some(r) = &f.reason {
                why.push_str("<ul>");
                for d in &r.details {
                    let _ = write!(why, "<li>{}: {}</li>", esc(r.format), esc(d));
                }
                why.push_str("</ul>");
            }
            let class = if f.noise { " class=\"noise\"" } else { "" };
            let _ = writeln!(
                h,
                "<tr{class}><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{why}</td></tr>",
                esc(&f.path),
                esc(&kind),
                value(&f.a),
                value(&f.b),
            );
        }
        if layer.is_some() {
            h.push_str("</table>\n");
        }
        if n.omitted > 0 {
            let _ = writeln!(h, "<p>... and {} more differences</p>", n.omitted);
        }
    }
    if let Some(e) = &rep.files_error {
        let _ = writeln!(h, "<p>Files not compared: {}</p>", esc(e));
    }
    h.push_str("</body>\n</html>\n");
    h
}

//! Exports of the chair's summary and of group outcomes: DOCX, Markdown, printable HTML and
//! JSON with full provenance.
//!
//! Every format renders the same [`Report`]: a masthead (document symbol, date, "Original:
//! English"), a title, headings, and paragraphs numbered consecutively through the whole
//! document, as UN documents are. Provenance (which group bullet, which submission version) goes
//! to an annex keyed by paragraph number, never into the text. The DOCX is plain WordprocessingML
//! written here and zipped with the `zip` crate: no template, nothing to install.

use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};

use super::{arr, int, s};

/// A document ready to render.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Document symbol; a placeholder until the secretariat assigns one.
    pub symbol: String,
    pub date: String,
    pub title: String,
    pub subtitle: String,
    pub preamble: Vec<String>,
    pub sections: Vec<ReportSection>,
    pub annex_title: String,
    /// (paragraph number, provenance line).
    pub annex: Vec<(usize, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportSection {
    pub heading: String,
    /// (paragraph number, text).
    pub paragraphs: Vec<(usize, String)>,
}

pub const SYMBOL_PLACEHOLDER: &str = "A/CONF.XXX/X";

fn paragraphs(text: &str) -> Vec<String> {
    text.split('\n')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The chair's summary as a report. `dimensions` names each group for the annex.
pub fn summary_report(summary: &Value, meeting_title: &str, date: &str) -> Report {
    let mut n = 0;
    let mut annex = Vec::new();
    let mut sections = Vec::new();
    let mut preamble = Vec::new();
    for p in paragraphs(&s(summary, "preamble")) {
        n += 1;
        preamble.push(format!("{n}.\t{p}"));
    }
    for section in arr(summary, "sections") {
        let mut paras = Vec::new();
        for item in arr(section, "items") {
            let text = s(item, "text");
            if text.trim().is_empty() {
                continue;
            }
            n += 1;
            paras.push((n, text.trim().replace('\n', " ")));
            let cites: Vec<String> = arr(item, "sources")
                .iter()
                .map(|src| {
                    format!(
                        "action group {}, bullet {}, submission version {}",
                        int(src, "group"),
                        s(src, "bulletId"),
                        int(src, "version")
                    )
                })
                .collect();
            annex.push((
                n,
                if cites.is_empty() {
                    "drafted by the co-facilitators".to_owned()
                } else {
                    cites.join("; ")
                },
            ));
        }
        if !paras.is_empty() {
            sections.push(ReportSection {
                heading: s(section, "title"),
                paragraphs: paras,
            });
        }
    }
    let revision = int(summary, "revision").max(1);
    Report {
        symbol: SYMBOL_PLACEHOLDER.into(),
        date: date.into(),
        title: s(summary, "title"),
        subtitle: format!(
            "{meeting_title} — revision {revision} ({})",
            super::state_of(summary)
        ),
        preamble,
        sections,
        annex_title: "Annex: sources of the paragraphs".into(),
        annex,
    }
}

/// A group's outcome as a report.
pub fn outcome_report(outcome: &Value, meeting_title: &str, date: &str, version: &str) -> Report {
    let group = outcome.get("group").cloned().unwrap_or(Value::Null);
    let mut n = 0;
    let mut annex = Vec::new();
    let mut sections = Vec::new();
    for section in arr(outcome, "sections") {
        let mut paras = Vec::new();
        for b in arr(section, "bullets") {
            let text = s(b, "text");
            if text.trim().is_empty() {
                continue;
            }
            n += 1;
            paras.push((n, text.trim().replace('\n', " ")));
            let by: Vec<&str> = arr(b, "proposedBy")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let tags: Vec<&str> = arr(b, "tags").iter().filter_map(Value::as_str).collect();
            annex.push((
                n,
                format!(
                    "bullet {}; status {}; proposed by {}; tags {}",
                    s(b, "id"),
                    s(b, "status"),
                    if by.is_empty() {
                        "—".into()
                    } else {
                        by.join(", ")
                    },
                    if tags.is_empty() {
                        "—".into()
                    } else {
                        tags.join(", ")
                    },
                ),
            ));
        }
        sections.push(ReportSection {
            heading: s(section, "title"),
            paragraphs: paras,
        });
    }
    Report {
        symbol: SYMBOL_PLACEHOLDER.into(),
        date: date.into(),
        title: format!(
            "Outcome of action group {}: {}",
            int(&group, "number"),
            s(&group, "dimension")
        ),
        subtitle: {
            let mut parts = vec![meeting_title.to_owned()];
            for (role, key) in [("moderator", "moderator"), ("rapporteur", "rapporteur")] {
                let name = s(&group, key);
                if !name.trim().is_empty() {
                    parts.push(format!("{role}: {name}"));
                }
            }
            parts.push(version.to_owned());
            parts.join(" — ")
        },
        preamble: Vec::new(),
        sections,
        annex_title: "Annex: the bullets' records".into(),
        annex,
    }
}

pub fn markdown(r: &Report) -> String {
    let mut out = format!(
        "{}  \n{}  \nOriginal: English\n\n# {}\n\n*{}*\n\n",
        r.symbol, r.date, r.title, r.subtitle
    );
    for p in &r.preamble {
        out.push_str(&format!("{}\n\n", p.replacen('\t', " ", 1)));
    }
    for s in &r.sections {
        out.push_str(&format!("## {}\n\n", s.heading));
        for (n, p) in &s.paragraphs {
            out.push_str(&format!("{n}. {p}\n\n"));
        }
    }
    out.push_str(&format!("---\n\n## {}\n\n", r.annex_title));
    for (n, line) in &r.annex {
        out.push_str(&format!("- Paragraph {n}: {line}\n"));
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn html(r: &Report) -> String {
    let mut body = format!(
        "<header class=\"masthead\"><div class=\"symbol\">{}</div><div>Distr.: General</div>\
         <div>{}</div><div>Original: English</div></header>\n<h1>{}</h1>\n<p class=\"sub\">{}</p>\n",
        esc(&r.symbol),
        esc(&r.date),
        esc(&r.title),
        esc(&r.subtitle)
    );
    for p in &r.preamble {
        let (num, text) = p.split_once('\t').unwrap_or(("", p));
        body.push_str(&format!(
            "<p class=\"para\"><span class=\"n\">{}</span>{}</p>\n",
            esc(num),
            esc(text)
        ));
    }
    for s in &r.sections {
        body.push_str(&format!("<h2>{}</h2>\n", esc(&s.heading)));
        for (n, p) in &s.paragraphs {
            body.push_str(&format!(
                "<p class=\"para\"><span class=\"n\">{n}.</span>{}</p>\n",
                esc(p)
            ));
        }
    }
    body.push_str(&format!(
        "<section class=\"annex\"><h2>{}</h2><ul>\n",
        esc(&r.annex_title)
    ));
    for (n, line) in &r.annex {
        body.push_str(&format!("<li>Paragraph {n}: {}</li>\n", esc(line)));
    }
    body.push_str("</ul></section>\n");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
         body{{font-family:'Times New Roman',serif;max-width:42rem;margin:2rem auto;line-height:1.4}}\
         .masthead{{display:grid;grid-template-columns:1fr;text-align:right;border-bottom:2px solid #000;margin-bottom:1rem}}\
         .symbol{{font-size:1.3rem;font-weight:bold}}.para{{display:flex;gap:1rem}}.n{{min-width:2rem}}\
         .annex{{page-break-before:always;font-size:.9rem}}@media print{{body{{margin:0}}}}\
         </style></head><body>\n{body}</body></html>\n",
        esc(&r.title)
    )
}

/// The report as a DOCX file (WordprocessingML in a zip).
pub fn docx(r: &Report) -> Vec<u8> {
    let mut paras = String::new();
    let p = |style: &str, align: Option<&str>, text: &str| -> String {
        let jc = align
            .map(|a| format!("<w:jc w:val=\"{a}\"/>"))
            .unwrap_or_default();
        format!(
            "<w:p><w:pPr><w:pStyle w:val=\"{style}\"/>{jc}</w:pPr><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
            esc(text)
        )
    };
    let numbered = |n: &str, text: &str| -> String {
        format!(
            "<w:p><w:pPr><w:pStyle w:val=\"Numbered\"/></w:pPr><w:r><w:t>{}</w:t></w:r><w:r><w:tab/></w:r><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
            esc(n),
            esc(text)
        )
    };
    paras.push_str(&p("Masthead", Some("right"), &r.symbol));
    paras.push_str(&p("Normal", Some("right"), "Distr.: General"));
    paras.push_str(&p("Normal", Some("right"), &r.date));
    paras.push_str(&p("Normal", Some("right"), "Original: English"));
    paras.push_str(&p("Title", None, &r.title));
    paras.push_str(&p("Subtitle", None, &r.subtitle));
    for para in &r.preamble {
        let (num, text) = para.split_once('\t').unwrap_or(("", para));
        paras.push_str(&numbered(num, text));
    }
    for s in &r.sections {
        paras.push_str(&p("Heading1", None, &s.heading));
        for (n, text) in &s.paragraphs {
            paras.push_str(&numbered(&format!("{n}."), text));
        }
    }
    paras.push_str("<w:p><w:r><w:br w:type=\"page\"/></w:r></w:p>");
    paras.push_str(&p("Heading1", None, &r.annex_title));
    for (n, line) in &r.annex {
        paras.push_str(&p("Normal", None, &format!("Paragraph {n}: {line}")));
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{paras}<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/>\
         <w:pgMar w:top=\"1440\" w:right=\"1440\" w:bottom=\"1440\" w:left=\"1440\" w:header=\"708\" w:footer=\"708\" w:gutter=\"0\"/>\
         </w:sectPr></w:body></w:document>"
    );
    let files: [(&str, String); 5] = [
        ("[Content_Types].xml", CONTENT_TYPES.into()),
        ("_rels/.rels", RELS.into()),
        ("word/_rels/document.xml.rels", DOC_RELS.into()),
        ("word/styles.xml", STYLES.into()),
        ("word/document.xml", document),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in files {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(content.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

/// The JSON export: the document as it is, with the report's numbering and provenance.
pub fn json_export(doc: &Value, report: &Report, extra: Value) -> Value {
    json!({
        "symbol": report.symbol,
        "date": report.date,
        "title": report.title,
        "paragraphs": report.sections.iter().flat_map(|s| s.paragraphs.iter().map(move |(n, t)|
            json!({"number": n, "section": s.heading, "text": t}))).collect::<Vec<_>>(),
        "provenance": report.annex.iter().map(|(n, l)| json!({"paragraph": n, "source": l})).collect::<Vec<_>>(),
        "document": doc,
        "meta": extra,
    })
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

const DOC_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#;

const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii="Times New Roman" w:hAnsi="Times New Roman" w:cs="Times New Roman"/><w:sz w:val="20"/><w:lang w:val="en-GB"/></w:rPr></w:rPrDefault><w:pPrDefault><w:pPr><w:spacing w:after="120" w:line="240" w:lineRule="atLeast"/></w:pPr></w:pPrDefault></w:docDefaults><w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style><w:style w:type="paragraph" w:styleId="Masthead"><w:name w:val="Masthead"/><w:basedOn w:val="Normal"/><w:rPr><w:b/><w:sz w:val="28"/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:pPr><w:spacing w:before="480" w:after="240"/></w:pPr><w:rPr><w:b/><w:sz w:val="34"/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Subtitle"><w:name w:val="Subtitle"/><w:basedOn w:val="Normal"/><w:rPr><w:i/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:pPr><w:keepNext/><w:spacing w:before="360" w:after="120"/><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:b/><w:sz w:val="24"/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Numbered"><w:name w:val="Numbered paragraph"/><w:basedOn w:val="Normal"/><w:pPr><w:tabs><w:tab w:val="left" w:pos="567"/></w:tabs><w:ind w:left="567" w:hanging="567"/><w:jc w:val="both"/></w:pPr></w:style></w:styles>"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({"title": "Chair's summary", "preamble": "The meeting took stock.\n\nIt met in Puerto Vallarta.",
            "state": "drafting", "sections": [
            {"id": "group-1", "title": "Human rights", "items": [
                {"id": "i1", "text": "Protect the rights of migrants & their families", "sources": [
                    {"group": 1, "bulletId": "b1", "version": 2}]}]},
            {"id": "group-2", "title": "Drivers", "items": [
                {"id": "i2", "text": "Address <drivers>", "sources": []}]}]})
    }

    #[test]
    fn paragraphs_are_numbered_through_and_provenance_is_in_the_annex() {
        let r = summary_report(&sample(), "Stocktaking", "6 December 2017");
        let md = markdown(&r);
        assert!(md.contains("Original: English"));
        assert!(md.contains("## Human rights\n\n3. Protect the rights"));
        assert!(md.contains("4. Address <drivers>"));
        let (text, annex) = md.split_once("---").unwrap();
        assert!(!text.contains("b1"), "provenance stays out of the text");
        assert!(annex.contains("Paragraph 3: action group 1, bullet b1, submission version 2"));
        let h = html(&r);
        assert!(h.contains("Address &lt;drivers&gt;"));
    }

    #[test]
    fn the_docx_is_a_zip_with_the_wordprocessing_parts() {
        let bytes = docx(&summary_report(&sample(), "Stocktaking", "6 December 2017"));
        assert_eq!(&bytes[..2], b"PK");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut doc = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("word/document.xml").unwrap(), &mut doc)
            .unwrap();
        assert!(doc.contains("Protect the rights of migrants &amp; their families"));
        assert!(archive.by_name("[Content_Types].xml").is_ok());
    }
}

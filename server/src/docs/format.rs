//! The pre-established format: the per-meeting rules a group outcome must pass to be submitted.
//!
//! The web app checks the same rules live as people type (`web/src/format.ts`); this is the
//! server's check at submission, over the outcome's JSON.

use serde::Serialize;
use serde_json::Value;

use crate::meeting::FormatRules;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub rule: &'static str,
    pub section_id: String,
    pub bullet_id: Option<String>,
    pub message: String,
}

/// Words are runs of non-whitespace characters.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The text two bullets are compared by for duplicates: case-folded, spaces collapsed, and
/// punctuation at the ends trimmed.
pub fn normalize(text: &str) -> String {
    let folded = text.to_lowercase();
    let collapsed = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_owned()
}

/// Checks an outcome document (as JSON) against the rules.
pub fn check(outcome: &Value, rules: &FormatRules) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    let sections = outcome["sections"].as_array().cloned().unwrap_or_default();
    for section in &sections {
        let section_id = section["id"].as_str().unwrap_or_default().to_owned();
        let title = section["title"].as_str().unwrap_or_default();
        let bullets = section["bullets"].as_array().cloned().unwrap_or_default();
        if bullets.len() > rules.max_bullets_per_section as usize {
            out.push(Violation {
                rule: "maxBulletsPerSection",
                section_id: section_id.clone(),
                bullet_id: None,
                message: format!(
                    "“{title}” has {} bullets; at most {} are allowed",
                    bullets.len(),
                    rules.max_bullets_per_section
                ),
            });
        }
        for (i, bullet) in bullets.iter().enumerate() {
            let id = bullet["id"].as_str().unwrap_or_default().to_owned();
            let text = bullet["text"].as_str().unwrap_or_default();
            let at = |rule, message: String| Violation {
                rule,
                section_id: section_id.clone(),
                bullet_id: Some(id.clone()),
                message,
            };
            let n = i + 1;
            if rules.forbid_empty && text.trim().is_empty() {
                out.push(at(
                    "forbidEmpty",
                    format!("bullet {n} of “{title}” is empty"),
                ));
                continue;
            }
            if rules.single_paragraph && text.trim().contains(['\n', '\r']) {
                out.push(at(
                    "singleParagraph",
                    format!("bullet {n} of “{title}” has more than one paragraph"),
                ));
            }
            let words = word_count(text);
            if words > rules.max_words_per_bullet as usize {
                out.push(at(
                    "maxWordsPerBullet",
                    format!(
                        "bullet {n} of “{title}” has {words} words; at most {} are allowed",
                        rules.max_words_per_bullet
                    ),
                ));
            }
            if rules.forbid_duplicates {
                let key = normalize(text);
                if let Some((other, _)) = seen.iter().find(|(_, k)| *k == key) {
                    out.push(at(
                        "forbidDuplicates",
                        format!("bullet {n} of “{title}” repeats bullet {other}"),
                    ));
                } else {
                    seen.push((format!("{n} of “{title}”"), key));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(texts: &[&str]) -> Value {
        let bullets: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"id": format!("b{i}"), "text": t}))
            .collect();
        json!({"sections": [{"id": "commitments", "title": "Actionable commitments", "bullets": bullets}]})
    }

    #[test]
    fn a_clean_outcome_passes() {
        let v = check(
            &outcome(&["Ensure access to justice.", "Share data."]),
            &FormatRules::default(),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn each_rule_reports_its_bullet() {
        let long = vec!["word"; 51].join(" ");
        let texts = ["", "Two\nparagraphs", &long, "Share data.", "share  DATA"];
        let v = check(&outcome(&texts), &FormatRules::default());
        let rules: Vec<_> = v.iter().map(|v| (v.rule, v.bullet_id.as_deref())).collect();
        assert_eq!(
            rules,
            [
                ("forbidEmpty", Some("b0")),
                ("singleParagraph", Some("b1")),
                ("maxWordsPerBullet", Some("b2")),
                ("forbidDuplicates", Some("b4")),
            ]
        );
    }

    #[test]
    fn too_many_bullets_is_a_section_violation() {
        let texts: Vec<String> = (0..11).map(|i| format!("Proposal {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let v = check(&outcome(&refs), &FormatRules::default());
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].rule, v[0].bullet_id.as_deref()),
            ("maxBulletsPerSection", None)
        );
    }

    #[test]
    fn words_count_across_scripts() {
        assert_eq!(word_count("  Garantizar el acceso  "), 3);
        assert_eq!(word_count("ضمان الوصول إلى العدالة"), 4);
    }
}

//! A meeting as people describe it: the meeting file (title, dates, venue, agenda, action groups,
//! outcome sections and format rules) and the roles people hold in it.
//!
//! The demo meeting of the concept note is one such file, embedded in the binary. A meeting file
//! is validated here once, when the meeting is created, so that the rest of the server can rely
//! on unique group numbers and section ids.

use serde::{Deserialize, Serialize};

/// The concept note's meeting (Puerto Vallarta, 4–6 December 2017).
pub const DEMO_MEETING: &str = include_str!("../../meetings/gcm-stocktaking-2017.json");
pub const DEMO_SLUG: &str = "gcm-stocktaking-2017";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeetingFile {
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub venue: String,
    pub start_date: String,
    pub end_date: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub format_rules: FormatRules,
    #[serde(default = "default_sections")]
    pub sections: Vec<Section>,
    #[serde(default)]
    pub agenda: Vec<AgendaDay>,
    pub groups: Vec<Group>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FormatRules {
    pub max_words_per_bullet: u32,
    pub max_bullets_per_section: u32,
    pub forbid_empty: bool,
    pub forbid_duplicates: bool,
    pub single_paragraph: bool,
}

impl Default for FormatRules {
    fn default() -> Self {
        Self {
            max_words_per_bullet: 50,
            max_bullets_per_section: 10,
            forbid_empty: true,
            forbid_duplicates: true,
            single_paragraph: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    pub title: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgendaDay {
    pub day: u32,
    pub date: String,
    #[serde(default)]
    pub title: String,
    pub sessions: Vec<AgendaSession>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgendaSession {
    pub start: String,
    pub end: String,
    pub title: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub number: u32,
    pub dimension: String,
    pub slot: Slot,
    #[serde(default)]
    pub questions: Vec<String>,
    #[serde(default)]
    pub moderator: String,
    #[serde(default)]
    pub rapporteur: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    pub day: u32,
    pub date: String,
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub room: String,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn default_sections() -> Vec<Section> {
    [
        ("commitments", "Actionable commitments"),
        ("implementation", "Means of implementation and partnerships"),
        ("follow-up", "Follow-up and review"),
    ]
    .into_iter()
    .map(|(id, title)| Section {
        id: id.to_owned(),
        title: title.to_owned(),
    })
    .collect()
}

/// Why a meeting file was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid meeting file: {0}")]
pub struct InvalidMeeting(pub String);

impl MeetingFile {
    pub fn demo() -> Self {
        serde_json::from_str(DEMO_MEETING).expect("the embedded demo meeting parses")
    }

    /// Checks what serde cannot: a usable slug, unique group numbers and section ids, sane sizes.
    pub fn validate(&self) -> Result<(), InvalidMeeting> {
        let bad = |m: &str| Err(InvalidMeeting(m.to_owned()));
        let slug_ok = !self.slug.is_empty()
            && self.slug.len() <= 64
            && self
                .slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            return bad("slug must be 1–64 characters of a-z, 0-9 and '-'");
        }
        if self.title.trim().is_empty() || self.title.len() > 500 {
            return bad("title must be 1–500 characters");
        }
        if self.groups.is_empty() || self.groups.len() > 50 {
            return bad("a meeting has 1–50 groups");
        }
        let mut numbers: Vec<u32> = self.groups.iter().map(|g| g.number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        if numbers.len() != self.groups.len() || numbers.contains(&0) {
            return bad("group numbers must be unique and start at 1");
        }
        if self.sections.is_empty() || self.sections.len() > 20 {
            return bad("a meeting has 1–20 outcome sections");
        }
        let mut ids: Vec<&str> = self.sections.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.sections.len() || ids.iter().any(|id| id.is_empty()) {
            return bad("section ids must be unique and non-empty");
        }
        for group in &self.groups {
            validate_group_text(group)?;
        }
        let rules = &self.format_rules;
        if rules.max_words_per_bullet == 0 || rules.max_bullets_per_section == 0 {
            return bad("format limits must be positive");
        }
        Ok(())
    }

    pub fn group(&self, number: u32) -> Option<&Group> {
        self.groups.iter().find(|g| g.number == number)
    }
}

/// Size limits on the group texts that editors of the meeting may change later.
pub fn validate_group_text(group: &Group) -> Result<(), InvalidMeeting> {
    let too_long = |s: &str, n: usize| s.chars().count() > n;
    if group.dimension.trim().is_empty() || too_long(&group.dimension, 200) {
        return Err(InvalidMeeting(
            "a group's dimension must be 1–200 characters".into(),
        ));
    }
    if group.questions.len() > 20 || group.questions.iter().any(|q| too_long(q, 2000)) {
        return Err(InvalidMeeting(
            "at most 20 questions of at most 2,000 characters".into(),
        ));
    }
    if too_long(&group.moderator, 200) || too_long(&group.rapporteur, 200) {
        return Err(InvalidMeeting(
            "names must be at most 200 characters".into(),
        ));
    }
    Ok(())
}

/// What a person is in a meeting. Moderators have the rights of their group's rapporteur.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Secretariat,
    CoFacilitator,
    Rapporteur,
    Moderator,
    Delegate,
    Observer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Secretariat,
        Role::CoFacilitator,
        Role::Rapporteur,
        Role::Moderator,
        Role::Delegate,
        Role::Observer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Secretariat => "secretariat",
            Role::CoFacilitator => "co-facilitator",
            Role::Rapporteur => "rapporteur",
            Role::Moderator => "moderator",
            Role::Delegate => "delegate",
            Role::Observer => "observer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Rapporteurs and moderators belong to one group; nobody else does.
    pub fn needs_group(self) -> bool {
        matches!(self, Role::Rapporteur | Role::Moderator)
    }

    /// May create and revoke invites and edit the meeting's groups.
    pub fn administers(self) -> bool {
        matches!(self, Role::Secretariat | Role::CoFacilitator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_meeting_is_the_concept_note() {
        let demo = MeetingFile::demo();
        demo.validate().unwrap();
        assert_eq!(demo.slug, DEMO_SLUG);
        let dims: Vec<&str> = demo.groups.iter().map(|g| g.dimension.as_str()).collect();
        assert_eq!(
            dims,
            [
                "Human dimension",
                "Community dimension",
                "Local/sub-national dimension",
                "National dimension",
                "Regional dimension",
                "Global dimension"
            ]
        );
        for g in &demo.groups {
            let (start, end) = if g.number <= 3 {
                ("10:45", "13:00")
            } else {
                ("15:30", "18:00")
            };
            assert_eq!(
                (g.slot.day, g.slot.start.as_str(), g.slot.end.as_str()),
                (2, start, end)
            );
        }
        assert_eq!(demo.agenda.len(), 3);
    }

    #[test]
    fn duplicate_groups_and_bad_slugs_are_refused() {
        let mut m = MeetingFile::demo();
        m.groups[1].number = 1;
        assert!(m.validate().is_err());
        let mut m = MeetingFile::demo();
        m.slug = "Bad Slug".into();
        assert!(m.validate().is_err());
    }

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}

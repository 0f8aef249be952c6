//! Meeting administration shared by the CLI and the REST API: creating meetings (and the demo
//! meeting on first start) and minting invites.

use crate::auth::{hash_token, new_token};
use crate::docs::init;
use crate::ids::{DocId, PersonId};
use crate::meeting::{InvalidMeeting, MeetingFile, Role};
use crate::store::{
    now_ms, DocKind, DocRecord, GroupRecord, GroupState, InviteRecord, MeetingRecord, NewMeeting,
    Store, StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Invalid(#[from] InvalidMeeting),
    #[error("a meeting with this slug exists already")]
    Exists,
    #[error("no such meeting")]
    NoMeeting,
    #[error("{0}")]
    BadInvite(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("could not build the documents: {0}")]
    Build(#[from] automerge::AutomergeError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => AdminError::Exists,
            other => AdminError::Store(other),
        }
    }
}

/// Creates a meeting and all its documents in one transaction.
pub async fn create_meeting(
    store: &dyn Store,
    file: MeetingFile,
) -> Result<MeetingRecord, AdminError> {
    file.validate()?;
    let index_doc = DocId::random();
    let summary_doc = DocId::random();
    let group_docs: Vec<(u32, DocId)> = file
        .groups
        .iter()
        .map(|g| (g.number, DocId::random()))
        .collect();
    let doc = |id: &DocId, kind| DocRecord {
        id: id.clone(),
        meeting: file.slug.clone(),
        kind,
    };
    let mut docs = vec![
        (
            doc(&index_doc, DocKind::Index),
            init::meeting_index(&file, &group_docs, &summary_doc)?,
        ),
        (
            doc(&summary_doc, DocKind::Summary),
            init::chair_summary(&file)?,
        ),
    ];
    for (group, (number, id)) in file.groups.iter().zip(&group_docs) {
        docs.push((
            doc(id, DocKind::Group(*number)),
            init::group_outcome(&file, group)?,
        ));
    }
    let groups = group_docs
        .iter()
        .map(|(number, id)| GroupRecord {
            meeting: file.slug.clone(),
            number: *number,
            doc: id.clone(),
            state: GroupState::Drafting,
        })
        .collect();
    let meeting = MeetingRecord {
        slug: file.slug.clone(),
        file,
        index_doc,
        summary_doc,
        created_at: now_ms(),
    };
    store
        .create_meeting(&NewMeeting {
            meeting: meeting.clone(),
            groups,
            docs,
        })
        .await?;
    Ok(meeting)
}

/// Creates the concept note's meeting if the database has no meeting at all. Returns a
/// co-facilitator invite URL when it did. Safe to race: the slug is unique.
pub async fn bootstrap_demo(
    store: &dyn Store,
    public_url: &str,
) -> Result<Option<String>, AdminError> {
    if !store.meetings().await?.is_empty() {
        return Ok(None);
    }
    match create_meeting(store, MeetingFile::demo()).await {
        Ok(_) => {}
        Err(AdminError::Exists) => return Ok(None),
        Err(e) => return Err(e),
    }
    let invite = NewInvite {
        meeting: crate::meeting::DEMO_SLUG.to_owned(),
        role: Role::CoFacilitator,
        group: None,
        name: "Co-facilitator".to_owned(),
        expires_in_hours: None,
    };
    let (_, url) = create_invite(store, public_url, invite).await?;
    Ok(Some(url))
}

pub struct NewInvite {
    pub meeting: String,
    pub role: Role,
    pub group: Option<u32>,
    pub name: String,
    pub expires_in_hours: Option<u32>,
}

/// Mints an invite; returns the record and the URL with the secret (shown once, not stored).
pub async fn create_invite(
    store: &dyn Store,
    public_url: &str,
    new: NewInvite,
) -> Result<(InviteRecord, String), AdminError> {
    let meeting = store
        .meeting(&new.meeting)
        .await?
        .ok_or(AdminError::NoMeeting)?;
    match (new.role.needs_group(), new.group) {
        (true, None) => {
            return Err(AdminError::BadInvite(format!(
                "a {} needs a group",
                new.role.as_str()
            )))
        }
        (false, Some(_)) => {
            return Err(AdminError::BadInvite(format!(
                "a {} belongs to no group",
                new.role.as_str()
            )))
        }
        (true, Some(n)) if meeting.file.group(n).is_none() => {
            return Err(AdminError::BadInvite(format!(
                "the meeting has no group {n}"
            )))
        }
        _ => {}
    }
    let name = new.name.trim();
    if name.chars().count() > 200 {
        return Err(AdminError::BadInvite(
            "names are at most 200 characters".into(),
        ));
    }
    let name = if name.is_empty() {
        match new.group {
            Some(n) => format!("{} of group {n}", capitalize(new.role.as_str())),
            None => capitalize(new.role.as_str()),
        }
    } else {
        name.to_owned()
    };
    let token = new_token();
    let now = now_ms();
    let record = InviteRecord {
        id: PersonId::random(),
        meeting: new.meeting,
        role: new.role,
        group: new.group,
        name,
        token_hash: hash_token(&token),
        created_at: now,
        expires_at: new.expires_in_hours.map(|h| now + i64::from(h) * 3_600_000),
        revoked_at: None,
    };
    store.create_invite(&record).await?;
    let url = format!("{}/join/{token}", public_url.trim_end_matches('/'));
    Ok((record, url))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

//! Messages and their per-channel sequence (inside a tenant transaction).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgPool, Row};

use super::is_unique_violation;
use uuid::Uuid;

/// A message with its author's profile.
#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub seq: i64,
    pub user_id: String,
    pub client_msg_id: Option<String>,
    pub text: Option<String>,
    pub attachments: Value,
    pub parent_id: Option<Uuid>,
    pub reply_to_id: Option<Uuid>,
    pub reply_count: i32,
    pub reaction_count: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub pinned_at: Option<DateTime<Utc>>,
    pub pinned_by: Option<String>,
    /// The message's poll (`POST …/messages/:id/polls`).
    pub poll_id: Option<Uuid>,
    pub user_name: Option<String>,
    pub user_image: Option<String>,
    pub user_custom: Option<Value>,
    pub user_last_active_at: Option<DateTime<Utc>>,
    pub user_created_at: Option<DateTime<Utc>>,
    pub user_updated_at: Option<DateTime<Utc>>,
}

/// Columns of [`MessageRow`] over `message m` joined with `app_user u`.
const MESSAGE_COLUMNS: &str = "m.id, m.channel_id, m.seq, m.user_id, m.client_msg_id, m.text, m.attachments,
    m.parent_id, m.reply_to_id, m.reply_count, m.reaction_count, m.status, m.created_at, m.edited_at,
    m.deleted_at, m.pinned_at, m.pinned_by, m.poll_id, u.name AS user_name, u.image_url AS user_image,
    u.custom_data AS user_custom, u.last_active_at AS user_last_active_at,
    u.created_at AS user_created_at, u.updated_at AS user_updated_at";

/// `SELECT <message columns> FROM message m LEFT JOIN app_user u ... WHERE <filter>`.
fn select(filter: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM message m
         LEFT JOIN app_user u ON u.app_id = m.app_id AND u.id = m.user_id
         WHERE {filter}"
    ))
}

/// The message already sent with this client id, as `(id, seq)`.
pub async fn by_client_msg_id(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    client_msg_id: &str,
) -> Result<Option<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT id, seq FROM message WHERE app_id = $1 AND channel_id = $2 AND client_msg_id = $3")
        .bind(app_id)
        .bind(channel_id)
        .bind(client_msg_id)
        .fetch_optional(conn)
        .await
}

/// What [`send`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored with this `seq`, with the parent's reply count, the sender's read mark and the
    /// outbox row.
    Stored(i64),
    /// The channel does not exist (in this app).
    NoChannel,
    /// The sender is not a member of this private channel.
    NotMember,
    /// The channel already has a message with this `client_msg_id`.
    Duplicate { id: Uuid, seq: i64 },
    /// The parent is not a top-level message of the channel.
    BadParent,
    /// The message replied to is not in the channel.
    BadReplyTo,
    /// A concurrent send with the same `client_msg_id` won; nothing was written.
    LostRace,
}

/// `(result, message_seq, existing_id)` of `chatsdk_send_message`.
type SendRow = (String, Option<i64>, Option<Uuid>);

/// The unique index a concurrent duplicate send runs into.
const CLIENT_MSG_ID_KEY: &str = "message_app_id_channel_id_client_msg_id_key";

/// Checks and stores a message in one autocommit statement (`chatsdk_send_message`, migration
/// 0004; a first send to a public channel joins it there): the channel's row lock, which hands out the gap-free `seq`, is held only inside the
/// database. `m.seq` is ignored; the other columns are stored as given, so `m` rendered with
/// the returned `seq` is exactly the stored message. The outbox payload is `payload` with
/// `message.seq` filled in.
pub async fn send(
    pool: &PgPool,
    app_id: Uuid,
    m: &MessageRow,
    event_type: &str,
    channels: &[String],
    payload: &(impl Serialize + Sync),
) -> Result<Sent, sqlx::Error> {
    let row: Result<SendRow, _> = sqlx::query_as(
        "SELECT * FROM chatsdk_send_message($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(app_id)
    .bind(m.channel_id)
    .bind(m.id)
    .bind(&m.user_id)
    .bind(&m.client_msg_id)
    .bind(&m.text)
    .bind(&m.attachments)
    .bind(m.parent_id)
    .bind(m.reply_to_id)
    .bind(m.created_at)
    .bind(event_type)
    .bind(channels)
    .bind(Json(payload))
    .fetch_one(pool)
    .await;
    let (result, seq, existing) = match row {
        Err(err) if is_unique_violation(&err, CLIENT_MSG_ID_KEY) => return Ok(Sent::LostRace),
        other => other?,
    };
    let missing =
        |what: &str| sqlx::Error::Protocol(format!("chatsdk_send_message: {result} without {what}"));
    Ok(match result.as_str() {
        "sent" => Sent::Stored(seq.ok_or_else(|| missing("seq"))?),
        "no_channel" => Sent::NoChannel,
        "not_member" => Sent::NotMember,
        "duplicate" => Sent::Duplicate {
            id: existing.ok_or_else(|| missing("id"))?,
            seq: seq.ok_or_else(|| missing("seq"))?,
        },
        "bad_parent" => Sent::BadParent,
        "bad_reply_to" => Sent::BadReplyTo,
        other => {
            return Err(sqlx::Error::Protocol(format!(
                "chatsdk_send_message: unknown result {other}"
            )));
        }
    })
}

/// Moves the member's read mark forward (never back).
pub async fn mark_read(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    user_id: &str,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE channel_member SET last_read_seq = greatest(last_read_seq, $4)
         WHERE app_id = $1 AND channel_id = $2 AND user_id = $3",
    )
    .bind(app_id)
    .bind(channel_id)
    .bind(user_id)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn seq_of(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM message WHERE app_id = $1 AND channel_id = $2 AND id = $3")
        .bind(app_id)
        .bind(channel_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Which way a page runs from its cursor `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `seq > cursor`, ascending.
    Forward,
    /// `seq < cursor`, newest first.
    Backward,
}

/// A channel as a page of its messages sees it, with the page.
#[derive(Debug)]
pub struct ChannelPage {
    pub last_seq: i64,
    pub kind: String,
    pub is_member: bool,
    /// In the order of the [`Direction`].
    pub messages: Vec<MessageRow>,
}

/// The statement of [`page`]: `$1` app, `$2` channel, `$3` viewer, `$4` cursor `seq`, `$5`
/// limit. Public so the benchmark's raw PostgreSQL baseline runs exactly this SQL.
pub fn page_statement(direction: Direction) -> String {
    let (range, order) = match direction {
        Direction::Forward => ("m.seq > $4", "ASC"),
        Direction::Backward => ("m.seq < $4", "DESC"),
    };
    format!(
        "SELECT c.last_seq AS channel_last_seq, c.type AS channel_type,
                cm.user_id IS NOT NULL AS channel_is_member, p.*
         FROM channel c
         LEFT JOIN channel_member cm ON cm.app_id = c.app_id AND cm.channel_id = c.id AND cm.user_id = $3
         LEFT JOIN LATERAL ({page}) p ON true
         WHERE c.app_id = $1 AND c.id = $2
         ORDER BY p.seq {order}",
        page = select(&format!(
            "m.app_id = $1 AND m.channel_id = $2 AND {range} AND m.parent_id IS NULL
             ORDER BY m.seq {order} LIMIT $5"
        ))
        .0,
    )
}

/// The channel and up to `limit` of its top-level messages from `cursor`, in one statement:
/// the hottest read is one round trip. `None` when the channel does not exist; the caller
/// decides from `kind` and `is_member` whether the viewer may see the page.
pub async fn page(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    viewer: &str,
    direction: Direction,
    cursor: i64,
    limit: i64,
) -> Result<Option<ChannelPage>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(page_statement(direction)))
        .bind(app_id)
        .bind(channel_id)
        .bind(viewer)
        .bind(cursor)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut page = ChannelPage {
        last_seq: first.try_get("channel_last_seq")?,
        kind: first.try_get("channel_type")?,
        is_member: first.try_get("channel_is_member")?,
        messages: Vec::with_capacity(rows.len()),
    };
    // An empty page is one row with the message columns NULL.
    for row in &rows {
        if row.try_get::<Option<Uuid>, _>("id")?.is_some() {
            page.messages.push(MessageRow::from_row(row)?);
        }
    }
    Ok(Some(page))
}

pub async fn get(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
    id: Uuid,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(select("m.app_id = $1 AND m.channel_id = $2 AND m.id = $3"))
        .bind(app_id)
        .bind(channel_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Replaces the text of a live message; `None` if it is deleted or absent.
pub async fn edit(conn: &mut PgConnection, app_id: Uuid, id: Uuid, text: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE message SET text = $3, edited_at = now()
         WHERE app_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(app_id)
    .bind(id)
    .bind(text)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Soft delete: text and attachments are erased, the row (and its `seq`) stays.
pub async fn soft_delete(conn: &mut PgConnection, app_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE message SET text = NULL, attachments = '[]'::jsonb, deleted_at = now(),
                            pinned_at = NULL, pinned_by = NULL
         WHERE app_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(app_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replies of a thread, oldest first.
pub async fn thread(
    conn: &mut PgConnection,
    app_id: Uuid,
    parent_id: Uuid,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(select(
        "m.app_id = $1 AND m.parent_id = $2 ORDER BY m.seq ASC LIMIT $3",
    ))
    .bind(app_id)
    .bind(parent_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn set_pin(
    conn: &mut PgConnection,
    app_id: Uuid,
    id: Uuid,
    by: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE message SET pinned_at = CASE WHEN $3::text IS NULL THEN NULL ELSE coalesce(pinned_at, now()) END,
                            pinned_by = CASE WHEN $3::text IS NULL THEN NULL ELSE coalesce(pinned_by, $3) END
         WHERE app_id = $1 AND id = $2",
    )
    .bind(app_id)
    .bind(id)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn pinned(
    conn: &mut PgConnection,
    app_id: Uuid,
    channel_id: Uuid,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(select(
        "m.app_id = $1 AND m.channel_id = $2 AND m.pinned_at IS NOT NULL ORDER BY m.pinned_at DESC LIMIT 100",
    ))
    .bind(app_id)
    .bind(channel_id)
    .fetch_all(conn)
    .await
}

/// Adds a reaction; false when the user had it already. Keeps `reaction_count` in step.
pub async fn add_reaction(
    conn: &mut PgConnection,
    app_id: Uuid,
    message_id: Uuid,
    user_id: &str,
    emoji: &str,
) -> Result<bool, sqlx::Error> {
    let added = sqlx::query(
        "INSERT INTO reaction (app_id, message_id, user_id, emoji) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(app_id)
    .bind(message_id)
    .bind(user_id)
    .bind(emoji)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if added {
        bump_reactions(conn, app_id, message_id, 1).await?;
    }
    Ok(added)
}

pub async fn remove_reaction(
    conn: &mut PgConnection,
    app_id: Uuid,
    message_id: Uuid,
    user_id: &str,
    emoji: &str,
) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query(
        "DELETE FROM reaction WHERE app_id = $1 AND message_id = $2 AND user_id = $3 AND emoji = $4",
    )
    .bind(app_id)
    .bind(message_id)
    .bind(user_id)
    .bind(emoji)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if removed {
        bump_reactions(conn, app_id, message_id, -1).await?;
    }
    Ok(removed)
}

async fn bump_reactions(conn: &mut PgConnection, app_id: Uuid, id: Uuid, by: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE message SET reaction_count = reaction_count + $3 WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(id)
        .bind(by)
        .execute(conn)
        .await?;
    Ok(())
}

/// Reactions of messages, grouped by emoji.
#[derive(Debug, Clone, FromRow)]
pub struct ReactionGroup {
    pub message_id: Uuid,
    pub emoji: String,
    pub count: i64,
    pub user_ids: Vec<String>,
}

/// The reactions of `rows`, asking the database only about messages that have some.
pub async fn reactions_of_rows(
    conn: &mut PgConnection,
    app_id: Uuid,
    rows: &[MessageRow],
) -> Result<Vec<ReactionGroup>, sqlx::Error> {
    let ids: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.reaction_count > 0)
        .map(|r| r.id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    reactions(conn, app_id, &ids).await
}

pub async fn reactions(
    conn: &mut PgConnection,
    app_id: Uuid,
    message_ids: &[Uuid],
) -> Result<Vec<ReactionGroup>, sqlx::Error> {
    sqlx::query_as(
        "SELECT message_id, emoji, count(*) AS count, array_agg(user_id ORDER BY created_at) AS user_ids
         FROM reaction WHERE app_id = $1 AND message_id = ANY($2)
         GROUP BY message_id, emoji ORDER BY message_id, min(created_at)",
    )
    .bind(app_id)
    .bind(message_ids)
    .fetch_all(conn)
    .await
}

/// Full-text search (PostgreSQL `simple` configuration) over live messages of the channels the
/// user belongs to, or of one channel; newest first.
pub async fn search(
    conn: &mut PgConnection,
    app_id: Uuid,
    user_id: &str,
    channel_id: Option<Uuid>,
    query: &str,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(select(
        "m.app_id = $1 AND m.deleted_at IS NULL
           AND m.search @@ websearch_to_tsquery('simple', $4)
           AND ($3::uuid IS NULL OR m.channel_id = $3)
           AND m.channel_id IN (
               SELECT c.id FROM channel c
               LEFT JOIN channel_member cm ON cm.app_id = c.app_id AND cm.channel_id = c.id AND cm.user_id = $2
               WHERE c.app_id = $1 AND (cm.user_id IS NOT NULL OR c.type IN ('public', 'team')))
         ORDER BY m.created_at DESC, m.id DESC LIMIT $5",
    ))
    .bind(app_id)
    .bind(user_id)
    .bind(channel_id)
    .bind(query)
    .bind(limit)
    .fetch_all(conn)
    .await
}

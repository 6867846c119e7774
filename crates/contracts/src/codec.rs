//! Avro in the Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro binary),
//! through the schema registry, subjects named by TopicRecordNameStrategy.
//!
//! Encoding looks the writer's schema up under `<topic>-<full name>` (or, when the
//! [`RegistryAccess`] says so, registers it if the subject lacks it). Decoding
//! reads the schema id from the frame, fetches the writer's schema by id (cached), checks that
//! the record may appear on the topic, and resolves the writer's schema against ours, so
//! records written by an older or a newer compatible version decode: fields we lack are
//! dropped, fields they lack take our defaults.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::{Contract, RegistryAccess, catalog};

/// Why a record could not be decoded. Every variant but [`DecodeError::RegistryUnavailable`]
/// is permanent: retrying the same bytes cannot succeed, so the record belongs in the
/// dead-letter topic with [`DecodeError::reason`] as its reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not in the Confluent wire format (too short, or a magic byte other than 0).
    #[error("not Confluent-framed: {detail}")]
    NotFramed { detail: String },
    /// The frame names a schema id the registry does not know.
    #[error("schema id {id} is unknown to the registry: {detail}")]
    UnknownSchemaId { id: u32, detail: String },
    /// The writer's record type is not one the catalog allows on this topic.
    #[error("record {record} may not appear on topic {topic}")]
    RecordNotAllowed { topic: String, record: String },
    /// The body does not decode with the writer's schema, or does not resolve to ours, or does
    /// not fit the Rust type.
    #[error("content of {record} (schema id {id}) is invalid: {detail}")]
    InvalidContent {
        record: String,
        id: u32,
        detail: String,
    },
    /// The registry did not answer. Transient: retry later.
    #[error("schema registry unavailable while fetching schema id {id}: {detail}")]
    RegistryUnavailable { id: u32, detail: String },
}

impl DecodeError {
    /// Whether retrying may succeed (the registry was unreachable); every other failure is
    /// permanent.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::RegistryUnavailable { .. })
    }

    /// A short, stable code for the failure, for dead-letter headers and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::NotFramed { .. } => "not-confluent-framed",
            DecodeError::UnknownSchemaId { .. } => "unknown-schema-id",
            DecodeError::RecordNotAllowed { .. } => "record-not-allowed-on-topic",
            DecodeError::InvalidContent { .. } => "invalid-content",
            DecodeError::RegistryUnavailable { .. } => "registry-unavailable",
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The registry refused the schema (incompatible with the subject's versions), could not
    /// be reached, or failed; the text says which.
    #[error("the schema of {subject}: {detail}")]
    Registry { subject: String, detail: String },
    /// The registry refused this principal (401, 403): a credential or a role is wrong.
    #[error("the registry refused {subject}: {detail}")]
    Refused { subject: String, detail: String },
    /// The subject lacks this schema and this codec does not register (a service: schemas are
    /// registered by the deployment step).
    #[error(
        "schema of {subject} is not registered: register the catalog's schemas first \
         (ftgo schemas register, the deployment step; services only look them up)"
    )]
    NotRegistered { subject: String },
    /// The value does not fit the schema.
    #[error("{record} does not fit its schema: {detail}")]
    InvalidValue { record: String, detail: String },
    /// The record is not one the codec knows on that topic.
    #[error("record {record} is not known on topic {topic}")]
    UnknownRecord { topic: String, record: String },
}

/// Why a codec could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid schema: {0}")]
    Schema(#[from] apache_avro::Error),
    #[error("invalid registry settings: {0}")]
    Registry(String),
}

/// A decoded record: which record it is, by which writer's schema, and its value resolved to
/// our (the reader's) schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub topic: String,
    pub full_name: String,
    /// The writer's schema id, from the frame.
    pub schema_id: u32,
    pub value: Value,
}

impl Decoded {
    /// The value of the record's key field (the catalog's `key` of the record): what the Kafka
    /// record's key must be. `None` for a record outside the catalog or a value that is not a
    /// record with that field.
    pub fn key(&self) -> Option<String> {
        let field = catalog::record(&self.topic, &self.full_name)?.key_field;
        let Value::Record(fields) = &self.value else {
            return None;
        };
        let (_, value) = fields.iter().find(|(name, _)| name == field)?;
        match value {
            Value::String(text) => Some(text.clone()),
            Value::Uuid(uuid) => Some(uuid.to_string()),
            Value::Int(n) => Some(n.to_string()),
            Value::Long(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The record as its Rust type `T`; a value of another record is refused.
    pub fn into_record<T: Contract>(self) -> Result<T, DecodeError> {
        if self.full_name != T::FULL_NAME {
            return Err(DecodeError::RecordNotAllowed {
                topic: self.topic,
                record: self.full_name,
            });
        }
        apache_avro::from_value(&self.value).map_err(|e| DecodeError::InvalidContent {
            record: self.full_name.clone(),
            id: self.schema_id,
            detail: e.to_string(),
        })
    }
}

self_cell::self_cell!(
    /// One of our schemas with a writer over it: named types are resolved once, not per message.
    struct SchemaWriter {
        owner: Schema,
        #[covariant]
        dependent: GenericDatumWriter,
    }
);

self_cell::self_cell!(
    /// A reader from one writer's schema (by id) to ours, built once per schema id.
    struct SchemaReader {
        owner: ReaderSchemas,
        #[covariant]
        dependent: GenericDatumReader,
    }
);

/// The schemas a [`SchemaReader`] reads between.
struct ReaderSchemas {
    writer: Schema,
    reader: Schema,
    /// The writer's schema is ours: records deserialize straight into Rust types, with no
    /// resolution step.
    same: bool,
    full_name: String,
}

/// A record type a codec reads and writes on one topic: our version of its schema.
struct KnownRecord {
    text: String,
    writer: SchemaWriter,
    /// Our schema's named types (money, addresses...), by name.
    names: HashMap<Name, Schema>,
}

impl KnownRecord {
    fn schema(&self) -> &Schema {
        self.writer.borrow_owner()
    }
}

/// Encodes and decodes records through the registry. Share it (`Arc`): it caches schema ids by
/// subject and readers by schema id, so after the first message of a kind no registry call is
/// made and no schema is walked again.
pub struct Codec {
    access: RegistryAccess,
    http: reqwest::Client,
    settings: SrSettings,
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    /// (topic, full name) -> our schema of that record.
    known: HashMap<(String, String), KnownRecord>,
    /// (topic, full name) -> the id the registry gave our schema.
    ids: RwLock<HashMap<(String, String), u32>>,
    /// Held while asking the registry for an id, so that many messages of a kind encoded at
    /// once (a burst at start) ask once, not once each.
    asking: tokio::sync::Mutex<()>,
    /// (writer's schema id, topic) -> a reader to our schema.
    readers: RwLock<HashMap<(u32, String), Arc<SchemaReader>>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("records", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// A codec for every record of the catalog (`schemas/`), on `registry`.
    pub fn for_catalog(registry: &RegistryAccess) -> Result<Self, SetupError> {
        let records = catalog::records().map(|(channel, record)| (channel.topic, record.schema));
        Self::new(registry, records)
    }

    /// A codec for the given `(topic, schema text)` records only: tests and tools use it for
    /// schemas outside the catalog (an older or newer version of a record, say).
    pub fn new<'a>(
        registry: &RegistryAccess,
        records: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SetupError> {
        let mut known = HashMap::new();
        for (topic, text) in records {
            let parsed = Schema::parse_str(text)?;
            let full_name = full_name(&parsed).unwrap_or_default();
            let names = ResolvedSchema::try_from(&parsed)?
                .get_names()
                .iter()
                .map(|(name, schema)| (name.clone(), (*schema).clone()))
                .collect();
            // Human-readable: a `Uuid` serializes as the string the `uuid` logical type is.
            let writer = SchemaWriter::try_new(parsed, |schema| {
                GenericDatumWriter::builder(schema)
                    .human_readable(true)
                    .build()
            })?;
            known.insert(
                (topic.to_owned(), full_name),
                KnownRecord {
                    text: text.to_owned(),
                    writer,
                    names,
                },
            );
        }
        let settings = registry.converter_settings()?;
        Ok(Self {
            access: registry.clone(),
            http: registry.http_client()?,
            encoder: AvroEncoder::new(settings.clone()),
            decoder: AvroDecoder::new(settings.clone()),
            settings,
            known,
            ids: RwLock::default(),
            asking: tokio::sync::Mutex::new(()),
            readers: RwLock::default(),
        })
    }

    /// The registry settings this codec uses.
    pub fn registry(&self) -> &SrSettings {
        &self.settings
    }

    /// Encodes a message of the catalog to Confluent-framed bytes, with the id of its schema
    /// under `<topic>-<full name>` (registered first if the registry lacks it and this codec
    /// registers).
    pub async fn encode<T: Contract>(&self, message: &T) -> Result<Vec<u8>, EncodeError> {
        let invalid = |detail: String| EncodeError::InvalidValue {
            record: T::FULL_NAME.to_owned(),
            detail,
        };
        let known = self.known(T::TOPIC, T::FULL_NAME)?;
        let mut bytes = self.frame(T::TOPIC, T::FULL_NAME, known).await?;
        // Schema-aware serialization, straight from the Rust value to Avro bytes.
        known
            .writer
            .borrow_dependent()
            .write_ser(&mut bytes, message)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(bytes)
    }

    /// Asks the registry for the ids of the given `(topic, full name)` records' schemas now
    /// (a service, for what it produces): a schema not registered is found at start, not at the
    /// first message, and no message waits on the registry after.
    pub async fn prepare<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), EncodeError> {
        for (topic, full_name) in records {
            let known = self.known(topic, full_name)?;
            self.frame(topic, full_name, known).await?;
        }
        Ok(())
    }

    /// Encodes an Avro value of a known record of `topic` to Confluent-framed bytes.
    pub async fn encode_value(
        &self,
        topic: &str,
        full_name: &str,
        value: Value,
    ) -> Result<Vec<u8>, EncodeError> {
        let invalid = |detail: String| EncodeError::InvalidValue {
            record: full_name.to_owned(),
            detail,
        };
        let known = self.known(topic, full_name)?;
        // Resolution accepts what the writer's validation would not (a bare value for a union),
        // and names a misfit precisely.
        let value = value
            .resolve_with_names(known.schema(), &known.names)
            .map_err(|e| invalid(e.to_string()))?;
        let mut bytes = self.frame(topic, full_name, known).await?;
        known
            .writer
            .borrow_dependent()
            .write_value_ref(&mut bytes, &value)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(bytes)
    }

    fn known(&self, topic: &str, full_name: &str) -> Result<&KnownRecord, EncodeError> {
        self.known
            .get(&(topic.to_owned(), full_name.to_owned()))
            .ok_or_else(|| EncodeError::UnknownRecord {
                topic: topic.to_owned(),
                record: full_name.to_owned(),
            })
    }

    /// The 5-byte Confluent header for our schema of the record: magic byte 0 and the id the
    /// registry gives it (asked on first use, then from the cache).
    async fn frame(
        &self,
        topic: &str,
        full_name: &str,
        known: &KnownRecord,
    ) -> Result<Vec<u8>, EncodeError> {
        let key = (topic.to_owned(), full_name.to_owned());
        let cached = |ids: &RwLock<HashMap<(String, String), u32>>| {
            ids.read().ok().and_then(|ids| ids.get(&key).copied())
        };
        let id = match cached(&self.ids) {
            Some(id) => id,
            None => {
                let _asking = self.asking.lock().await;
                match cached(&self.ids) {
                    // Asked meanwhile by another message.
                    Some(id) => id,
                    None => {
                        let id = if self.access.registers() {
                            self.register(topic, full_name, known).await?
                        } else {
                            self.look_up(topic, full_name, known).await?
                        };
                        if let Ok(mut ids) = self.ids.write() {
                            ids.insert(key.clone(), id);
                        }
                        id
                    }
                }
            }
        };
        let mut bytes = Vec::with_capacity(256);
        bytes.push(0);
        bytes.extend_from_slice(&id.to_be_bytes());
        Ok(bytes)
    }

    /// Registers our schema of the record under its subject (the registry answers the id of
    /// the version it already has, if any).
    async fn register(
        &self,
        topic: &str,
        full_name: &str,
        known: &KnownRecord,
    ) -> Result<u32, EncodeError> {
        let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
            topic.to_owned(),
            SuppliedSchema::new(
                Some(full_name.to_owned()),
                SchemaType::Avro,
                known.text.clone(),
            ),
        );
        let subject = crate::subject(topic, full_name);
        let registered = self
            .encoder
            .get_schema_and_id(&subject, strategy)
            .await
            .map_err(|e| EncodeError::Registry {
                subject,
                detail: describe(&e),
            })?;
        Ok(registered.id)
    }

    /// The id of our schema of the record under its subject, without registering: the
    /// Confluent API's lookup (`POST /subjects/<subject>`), a read.
    async fn look_up(
        &self,
        topic: &str,
        full_name: &str,
        known: &KnownRecord,
    ) -> Result<u32, EncodeError> {
        #[derive(serde::Deserialize)]
        struct Found {
            id: u32,
        }
        let subject = crate::subject(topic, full_name);
        let failed = |detail: String| EncodeError::Registry {
            subject: subject.clone(),
            detail,
        };
        let request = self
            .http
            .post(format!(
                "{}/subjects/{}",
                self.access.url(),
                subject.replace('/', "%2F")
            ))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "schema": known.text, "schemaType": "AVRO" }));
        let response = self
            .access
            .authorize(request)
            .send()
            .await
            .map_err(|e| failed(format!("the registry did not answer: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(EncodeError::NotRegistered { subject });
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let body = response.text().await.unwrap_or_default();
            return Err(EncodeError::Refused {
                subject,
                detail: format!("{status} as {:?}: {body}", self.access.username()),
            });
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(failed(format!("the registry answered {status}: {body}")));
        }
        let found: Found = response
            .json()
            .await
            .map_err(|e| failed(format!("unreadable answer: {e}")))?;
        Ok(found.id)
    }

    /// Decodes Confluent-framed bytes read from `topic` into the record type `T`.
    pub async fn decode<T: Contract>(&self, topic: &str, bytes: &[u8]) -> Result<T, DecodeError> {
        let (id, mut body) = split_frame(bytes)?;
        let reader = self.reader(topic, id).await?;
        let schemas = reader.borrow_owner();
        if schemas.full_name != T::FULL_NAME {
            return Err(DecodeError::RecordNotAllowed {
                topic: topic.to_owned(),
                record: schemas.full_name.clone(),
            });
        }
        let invalid = |detail: String| DecodeError::InvalidContent {
            record: schemas.full_name.clone(),
            id,
            detail,
        };
        let datum = reader.borrow_dependent();
        let message = if schemas.same {
            datum
                .read_deser(&mut body)
                .map_err(|e| invalid(e.to_string()))?
        } else {
            let value = datum
                .read_value(&mut body)
                .map_err(|e| invalid(e.to_string()))?;
            apache_avro::from_value(&value).map_err(|e| invalid(e.to_string()))?
        };
        all_read(body).map_err(invalid)?;
        Ok(message)
    }

    /// Decodes Confluent-framed bytes read from `topic` into an Avro value of our version of
    /// the record, whichever record of the topic it is.
    pub async fn decode_value(&self, topic: &str, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let (id, mut body) = split_frame(bytes)?;
        let reader = self.reader(topic, id).await?;
        let schemas = reader.borrow_owner();
        let invalid = |detail: String| DecodeError::InvalidContent {
            record: schemas.full_name.clone(),
            id,
            detail,
        };
        let value = reader
            .borrow_dependent()
            .read_value(&mut body)
            .map_err(|e| invalid(e.to_string()))?;
        all_read(body).map_err(invalid)?;
        Ok(Decoded {
            topic: topic.to_owned(),
            full_name: schemas.full_name.clone(),
            schema_id: id,
            value,
        })
    }

    /// Decodes Confluent-framed bytes with the writer's own schema, whatever record it is and
    /// whichever topic it came from: what a console consumer shows. Services use
    /// [`Codec::decode_value`], which checks the record against the topic and resolves it to
    /// our version.
    pub async fn decode_as_written(&self, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let (id, mut body) = split_frame(bytes)?;
        let writer = self.writer_schema(id).await?;
        let record = full_name(&writer.parsed).unwrap_or_else(|| "(not a record)".to_owned());
        let invalid = |detail: String| DecodeError::InvalidContent {
            record: record.clone(),
            id,
            detail,
        };
        let value = GenericDatumReader::builder(&writer.parsed)
            .build()
            .and_then(|reader| reader.read_value(&mut body))
            .map_err(|e| invalid(e.to_string()))?;
        all_read(body).map_err(invalid)?;
        Ok(Decoded {
            topic: String::new(),
            full_name: record.clone(),
            schema_id: id,
            value,
        })
    }

    /// The writer's schema `id`, from the registry (cached by the converter).
    async fn writer_schema(
        &self,
        id: u32,
    ) -> Result<Arc<schema_registry_converter::avro_common::AvroSchema>, DecodeError> {
        self.decoder.get_schema(id).await.map_err(|e| {
            if e.retriable || !describe(&e).contains("404") {
                DecodeError::RegistryUnavailable {
                    id,
                    detail: describe(&e),
                }
            } else {
                DecodeError::UnknownSchemaId {
                    id,
                    detail: describe(&e),
                }
            }
        })
    }

    /// The reader from the writer's schema `id` to ours on `topic`: fetched from the registry
    /// and checked against the catalog on first use, cached after.
    async fn reader(&self, topic: &str, id: u32) -> Result<Arc<SchemaReader>, DecodeError> {
        let key = (id, topic.to_owned());
        if let Some(reader) = self.readers.read().ok().and_then(|r| r.get(&key).cloned()) {
            return Ok(reader);
        }
        let writer = self.writer_schema(id).await?;
        let record = full_name(&writer.parsed).unwrap_or_else(|| "(not a record)".to_owned());
        let Some(ours) = self.known.get(&(topic.to_owned(), record.clone())) else {
            return Err(DecodeError::RecordNotAllowed {
                topic: topic.to_owned(),
                record,
            });
        };
        let schemas = ReaderSchemas {
            same: writer.parsed.canonical_form() == ours.schema().canonical_form(),
            writer: writer.parsed.clone(),
            reader: ours.schema().clone(),
            full_name: record.clone(),
        };
        let reader = SchemaReader::try_new(schemas, |s| {
            // Human-readable: a `uuid` (a string on the wire) deserializes into a `Uuid`.
            let builder = GenericDatumReader::builder(&s.writer).human_readable(true);
            if s.same {
                builder.build()
            } else {
                builder.reader_schema(&s.reader).build()
            }
        })
        .map_err(|e| DecodeError::InvalidContent {
            record,
            id,
            detail: format!("the writer's schema cannot be read as ours: {e}"),
        })?;
        let reader = Arc::new(reader);
        if let Ok(mut readers) = self.readers.write() {
            readers.insert(key, reader.clone());
        }
        Ok(reader)
    }
}

/// Splits a Confluent frame into the schema id and the Avro body.
pub(crate) fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match bytes {
        [0, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [magic, _, _, _, _, ..] => Err(DecodeError::NotFramed {
            detail: format!("magic byte is {magic}, not 0"),
        }),
        short => Err(DecodeError::NotFramed {
            detail: format!("{} bytes, shorter than the 5-byte header", short.len()),
        }),
    }
}

fn full_name(schema: &Schema) -> Option<String> {
    match schema {
        Schema::Record(record) => Some(record.name.fullname(None)),
        _ => None,
    }
}

/// Refuses a body with bytes after the record: the writer's schema does not describe them.
fn all_read(body: &[u8]) -> Result<(), String> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes left over after the record", body.len()))
    }
}

pub(crate) fn describe(error: &SRCError) -> String {
    match &error.cause {
        Some(cause) => format!("{}: {cause}", error.error),
        None => error.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_splits_into_id_and_body() {
        let (id, body) = split_frame(&[0, 0, 0, 1, 2, 7, 8]).expect("framed");
        assert_eq!(id, 258);
        assert_eq!(body, &[7, 8]);
    }

    #[test]
    fn a_wrong_magic_byte_is_not_framed() {
        let error = split_frame(&[1, 0, 0, 0, 1, 2]).expect_err("magic 1");
        assert_eq!(error.reason(), "not-confluent-framed");
        assert!(error.to_string().contains("magic byte is 1"), "{error}");
    }

    #[test]
    fn fewer_than_five_bytes_are_not_framed() {
        for short in [&[][..], &[0], &[0, 0, 0, 1]] {
            let error = split_frame(short).expect_err("short");
            assert!(matches!(error, DecodeError::NotFramed { .. }), "{error}");
            assert!(!error.is_transient());
        }
    }
}

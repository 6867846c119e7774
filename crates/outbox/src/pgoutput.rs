//! The two `pgoutput` messages the log-tailing relay needs: Relation (a table's columns, sent
//! before its first change on a connection) and Insert (a new row's values, in text format).
//! pgwire-replication carries the protocol (connection, START_REPLICATION, keepalives,
//! feedback) and hands over these messages as bytes; their layout is PostgreSQL's
//! "Logical Replication Message Formats".

use std::collections::HashMap;

/// A decoding failure: the stream is not what protocol version 1 of `pgoutput` sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pgoutput message: {0}")]
pub struct Malformed(pub String);

/// A message of the stream, as far as the relay cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Relation {
        oid: u32,
        namespace: String,
        name: String,
        columns: Vec<String>,
    },
    /// A new row: its table's oid, and each column's text value (`None` for NULL).
    Insert {
        oid: u32,
        values: Vec<Option<String>>,
    },
    /// Anything else (Begin, Commit, Type, Origin, Update, Delete, Truncate, ...).
    Other(u8),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Malformed> {
        if self.bytes.len() < n {
            return Err(Malformed(format!("{what} cut short")));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, Malformed> {
        let end = self
            .bytes
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| Malformed(format!("{what} has no terminator")))?;
        let text = String::from_utf8_lossy(&self.bytes[..end]).into_owned();
        self.bytes = &self.bytes[end + 1..];
        Ok(text)
    }
}

/// Decodes one `pgoutput` message (protocol version 1, text values).
pub fn decode(message: &[u8]) -> Result<Change, Malformed> {
    let mut reader = Reader { bytes: message };
    match reader.u8("message type")? {
        b'R' => {
            let oid = reader.u32("relation oid")?;
            let namespace = reader.string("namespace")?;
            let name = reader.string("relation name")?;
            reader.u8("replica identity")?;
            let count = reader.u16("column count")?;
            let mut columns = Vec::with_capacity(count as usize);
            for _ in 0..count {
                reader.u8("column flags")?;
                columns.push(reader.string("column name")?);
                reader.u32("column type")?;
                reader.u32("column type modifier")?;
            }
            Ok(Change::Relation {
                oid,
                namespace,
                name,
                columns,
            })
        }
        b'I' => {
            let oid = reader.u32("relation oid")?;
            if reader.u8("new tuple marker")? != b'N' {
                return Err(Malformed("insert without a new tuple".into()));
            }
            let count = reader.u16("column count")?;
            let mut values = Vec::with_capacity(count as usize);
            for _ in 0..count {
                match reader.u8("column kind")? {
                    b'n' => values.push(None),
                    b't' => {
                        let length = reader.u32("value length")? as usize;
                        let value = reader.take(length, "value")?;
                        values.push(Some(String::from_utf8_lossy(value).into_owned()));
                    }
                    kind => {
                        return Err(Malformed(format!(
                            "column kind {:?} (only text values are expected)",
                            kind as char
                        )));
                    }
                }
            }
            Ok(Change::Insert { oid, values })
        }
        other => Ok(Change::Other(other)),
    }
}

/// The columns of the tables seen so far on a connection, by relation oid.
#[derive(Debug, Default)]
pub struct Relations(HashMap<u32, (String, Vec<String>)>);

impl Relations {
    pub fn learn(&mut self, oid: u32, name: String, columns: Vec<String>) {
        self.0.insert(oid, (name, columns));
    }

    /// The row of `oid` as (column, value) pairs, or `None` if it is not `table`.
    pub fn row<'a>(
        &'a self,
        oid: u32,
        table: &str,
        values: &'a [Option<String>],
    ) -> Result<Option<HashMap<&'a str, Option<&'a str>>>, Malformed> {
        let (name, columns) = self.0.get(&oid).ok_or_else(|| {
            Malformed(format!("insert into relation {oid} before its description"))
        })?;
        if name != table {
            return Ok(None);
        }
        Ok(Some(
            columns
                .iter()
                .map(String::as_str)
                .zip(values.iter().map(Option::as_deref))
                .collect(),
        ))
    }
}

/// `bytea` in PostgreSQL's text output (`\x` and hex digits).
pub fn bytea_from_text(text: &str) -> Result<Vec<u8>, Malformed> {
    let hex = text
        .strip_prefix("\\x")
        .ok_or_else(|| Malformed("bytea not in hex output format".into()))?;
    if hex.len() % 2 != 0 {
        return Err(Malformed("odd number of hex digits".into()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|e| Malformed(format!("bytea: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation() -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(16_384u32.to_be_bytes());
        m.extend(b"ftgo_order\0outbox\0");
        m.push(b'd');
        m.extend(2u16.to_be_bytes());
        for (name, oid) in [("position", 20u32), ("key", 25)] {
            m.push(1);
            m.extend(name.as_bytes());
            m.push(0);
            m.extend(oid.to_be_bytes());
            m.extend((-1i32).to_be_bytes());
        }
        m
    }

    fn insert() -> Vec<u8> {
        let mut m = vec![b'I'];
        m.extend(16_384u32.to_be_bytes());
        m.push(b'N');
        m.extend(2u16.to_be_bytes());
        m.push(b't');
        m.extend(2u32.to_be_bytes());
        m.extend(b"42");
        m.push(b'n');
        m
    }

    #[test]
    fn a_relation_and_an_insert_decode_into_a_row() {
        let Change::Relation {
            oid,
            namespace,
            name,
            columns,
        } = decode(&relation()).expect("relation")
        else {
            panic!("not a relation");
        };
        assert_eq!(
            (oid, namespace.as_str(), name.as_str()),
            (16_384, "ftgo_order", "outbox")
        );
        assert_eq!(columns, ["position", "key"]);
        let mut relations = Relations::default();
        relations.learn(oid, name, columns);
        let Change::Insert { oid, values } = decode(&insert()).expect("insert") else {
            panic!("not an insert");
        };
        let row = relations
            .row(oid, "outbox", &values)
            .expect("known")
            .expect("the outbox");
        assert_eq!(row["position"], Some("42"));
        assert_eq!(row["key"], None);
        assert!(
            relations
                .row(oid, "other", &values)
                .expect("known")
                .is_none()
        );
    }

    #[test]
    fn cut_or_unknown_input_is_refused_with_what_was_wrong() {
        let cut = &insert()[..9];
        assert!(decode(cut).expect_err("cut").0.contains("cut short"));
        let unknown = Relations::default();
        assert!(unknown.row(7, "outbox", &[]).is_err());
        assert_eq!(decode(b"B123").expect("other"), Change::Other(b'B'));
    }

    #[test]
    fn bytea_text_decodes() {
        assert_eq!(
            bytea_from_text("\\x00ff41").expect("hex"),
            vec![0, 255, b'A']
        );
        assert!(bytea_from_text("00ff").is_err());
        assert!(bytea_from_text("\\x0").is_err());
    }
}

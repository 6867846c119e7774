//! Decoded records on one line, and money and times as people read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::types::Value;

/// Milliseconds since the Unix epoch.
pub fn millis(time: SystemTime) -> Option<i64> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

/// `2026-11-26T08:00:00.123Z` for milliseconds since the epoch.
pub fn rfc3339_millis(ms: i64) -> String {
    let time = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    humantime::format_rfc3339_millis(time).to_string()
}

/// A decoded record on one line: `reason=CARD_AUTHORIZATION_FAILED detail="..."`. Leaves out
/// `skip` (the key field, which the line already says), absent optional fields and the
/// record's own `...At` time (the record's timestamp says it). Money reads `12.95 USD`, a line
/// item `samosa:2`, an address `street, city, state zip`.
pub fn summary(value: &Value, skip: &[&str]) -> String {
    let Value::Record(fields) = value else {
        return inline(value);
    };
    fields
        .iter()
        .filter(|(name, value)| {
            let absent = matches!(value, Value::Null)
                || matches!(value, Value::Union(_, inner) if **inner == Value::Null);
            let own_time = name.ends_with("At") && matches!(value, Value::TimestampMillis(_));
            !skip.contains(&name.as_str()) && !absent && !own_time
        })
        .map(|(name, value)| format!("{name}={}", inline(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Int(n) | Value::Date(n) => n.to_string(),
        Value::Long(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Double(x) => x.to_string(),
        Value::String(s) => quoted(s),
        Value::Uuid(u) => u.to_string(),
        Value::Enum(_, symbol) => symbol.clone(),
        Value::Union(_, inner) => inline(inner),
        Value::TimestampMillis(ms) | Value::LocalTimestampMillis(ms) => rfc3339_millis(*ms),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => {
            let mut entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}={}", inline(v)))
                .collect();
            entries.sort();
            format!("{{{}}}", entries.join(" "))
        }
        Value::Record(fields) => record_inline(fields),
        other => format!("{other:?}"),
    }
}

fn record_inline(fields: &[(String, Value)]) -> String {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| match v {
                Value::Union(_, inner) => inner.as_ref(),
                other => other,
            })
    };
    let text = |name: &str| match get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if let (Some(Value::Long(minor)), Some(currency)) = (get("amountMinor"), text("currency")) {
        return money(*minor, currency);
    }
    if let (Some(item), Some(Value::Int(quantity))) = (text("menuItemId"), get("quantity")) {
        return format!("{item}:{quantity}");
    }
    if let (Some(street), Some(city)) = (text("street1"), text("city")) {
        let mut parts = vec![street];
        parts.extend(text("street2"));
        parts.push(city);
        let tail = [text("state"), text("zip")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mut line = parts.join(", ");
        if !tail.is_empty() {
            line = format!("{line}, {tail}");
        }
        return quoted(&line);
    }
    if let (Some(first), Some(last)) = (text("firstName"), text("lastName")) {
        return quoted(&format!("{first} {last}"));
    }
    if let (Some(id), Some(_), Some(Value::Record(price))) =
        (text("id"), text("name"), get("price"))
    {
        return format!("{id} {}", record_inline(price));
    }
    format!(
        "{{{}}}",
        fields
            .iter()
            .map(|(name, value)| format!("{name}={}", inline(value)))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn quoted(text: &str) -> String {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
        format!("{text:?}")
    } else {
        text.to_owned()
    }
}

/// `12.95 USD` for 1295 minor units: the currency's ISO 4217 minor-unit digits (2 for most).
pub fn money(minor: i64, currency: &str) -> String {
    let digits = match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    };
    if digits == 0 {
        return format!("{minor} {currency}");
    }
    let unit = 10_i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let (major, rest) = (
        minor.unsigned_abs() / unit as u64,
        minor.unsigned_abs() % unit as u64,
    );
    format!(
        "{sign}{major}.{rest:0width$} {currency}",
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_json::fixtures::{create_order, order_json};

    #[test]
    fn summaries_show_what_matters() {
        let schema = create_order();
        let value = schema.to_avro(&order_json()).expect("fits");
        assert_eq!(
            summary(&value, &["orderId"]),
            "consumerId=0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e70 \
             restaurantId=0191c9b2-6d5e-7c8a-9b3e-2f1a4c5d6e71 lineItems=[samosa:2] \
             deliveryAddress=\"1 Main St, Oakland, CA 94612\" deliveryTime=2026-11-26T12:00:00.000Z"
        );
        assert_eq!(money(1295, "USD"), "12.95 USD");
        assert_eq!(money(130_000, "USD"), "1300.00 USD");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(money(500, "JPY"), "500 JPY");
    }
}

//! Resource quantities as ColonyOS writes them: cpu in millicores ("1000m"), memory in
//! Kubernetes-style units ("16Gi", "1G", "512Mi").
//!
//! Parsing follows ColonyOS (`pkg/parsers/parser.go`): a cpu string without the `m` suffix
//! means zero, an empty string means "no requirement" (0) in a spec and "unlimited" in an
//! executor's available resources.

/// Parses a cpu quantity into millicores. `""` and strings without `m` are 0, as in ColonyOS.
pub fn parse_cpu_millis(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let Some(digits) = text.strip_suffix('m') else {
        return Ok(0);
    };
    digits
        .parse::<i64>()
        .map_err(|_| format!("invalid cpu quantity {text:?}"))
}

/// Parses a memory quantity into MiB. Accepts Ki/Mi/Gi/Ti/Pi (binary), K/M/G/T/P (decimal)
/// and plain bytes; `""` is 0.
pub fn parse_mem_mib(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: i128 = digits
        .parse()
        .map_err(|_| format!("invalid memory quantity {text:?}"))?;
    let bytes_per_unit: i128 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        _ => return Err(format!("invalid memory unit {unit:?} in {text:?}")),
    };
    let mib = value
        .checked_mul(bytes_per_unit)
        .map(|bytes| bytes / (1 << 20))
        .ok_or_else(|| format!("memory quantity {text:?} is too large"))?;
    i64::try_from(mib).map_err(|_| format!("memory quantity {text:?} is too large"))
}

/// Normalized cpu text as ColonyOS returns it on read-back.
pub fn cpu_text(millis: i64) -> String {
    format!("{millis}m")
}

/// Normalized memory text as ColonyOS returns it on read-back.
pub fn mem_text(mib: i64) -> String {
    format!("{mib}Mi")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        assert_eq!(parse_cpu_millis("4000m"), Ok(4000));
        assert_eq!(parse_cpu_millis(""), Ok(0));
        assert_eq!(parse_cpu_millis("4"), Ok(0));
        assert!(parse_cpu_millis("xm").is_err());
    }

    #[test]
    fn mem() {
        assert_eq!(parse_mem_mib("16Gi"), Ok(16 * 1024));
        assert_eq!(parse_mem_mib("1G"), Ok(953));
        assert_eq!(parse_mem_mib("512Mi"), Ok(512));
        assert_eq!(parse_mem_mib(""), Ok(0));
        assert!(parse_mem_mib("5Zi").unwrap_err().contains("unit"));
        assert!(parse_mem_mib("99999999999999999999999Pi").is_err());
    }
}

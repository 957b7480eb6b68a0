//! Stateless checks of client input, run by the API before proposing and again by `apply`
//! (apply must be safe for any command in the log). Errors name the field and the problem.

use proto::process::{PRIORITY_MAX, PRIORITY_MIN};
use proto::{units, ApiError, FunctionSpec};

/// Longest accepted name (colony, executor, user, executor type, function), in bytes.
pub const NAME_BYTES_MAX: usize = 256;
/// Longest accepted maxwaittime / maxexectime, in seconds (100 years; keeps deadlines in i64 ns).
pub const DURATION_SECONDS_MAX: i64 = 100 * 365 * 86_400;

/// Refuses empty, oversize, or `\0`-containing names (`\0` separates key parts).
pub fn name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{field} must not be empty")));
    }
    if value.len() > NAME_BYTES_MAX {
        return Err(ApiError::bad_request(format!(
            "{field} is {} bytes, longer than the limit of {NAME_BYTES_MAX}",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "{field} must not contain NUL"
        )));
    }
    Ok(())
}

/// Refuses anything but a 64-hex-char id; ids are compared lowercase.
pub fn id(field: &str, value: &str) -> Result<String, ApiError> {
    if !proto::crypto::is_id(value) {
        return Err(ApiError::bad_request(format!(
            "{field} must be 64 hex characters"
        )));
    }
    Ok(value.to_ascii_lowercase())
}

/// Checks a submitted spec and returns it normalized as ColonyOS stores it: cpu as `"<n>m"`,
/// memory and storage as `"<MiB>Mi"`, `executornames ["*"]` as `[]`.
pub fn spec(spec: &FunctionSpec) -> Result<FunctionSpec, ApiError> {
    let mut spec = spec.clone();
    name("conditions.colonyname", &spec.conditions.colonyname)?;
    name("conditions.executortype", &spec.conditions.executortype)?;
    if !(PRIORITY_MIN..=PRIORITY_MAX).contains(&spec.priority) {
        return Err(ApiError::bad_request(format!(
            "priority {} is outside [{PRIORITY_MIN}, {PRIORITY_MAX}]",
            spec.priority
        )));
    }
    for (field, value) in [
        ("maxwaittime", spec.maxwaittime),
        ("maxexectime", spec.maxexectime),
    ] {
        if value > DURATION_SECONDS_MAX {
            return Err(ApiError::bad_request(format!(
                "{field} {value} exceeds the limit of {DURATION_SECONDS_MAX} seconds"
            )));
        }
    }
    let conditions = &mut spec.conditions;
    let cpu = units::parse_cpu_millis(&conditions.cpu).map_err(ApiError::bad_request)?;
    let mem = units::parse_mem_mib(&conditions.mem).map_err(ApiError::bad_request)?;
    let storage = units::parse_mem_mib(&conditions.storage).map_err(ApiError::bad_request)?;
    let gpu_mem = units::parse_mem_mib(&conditions.gpu.mem).map_err(ApiError::bad_request)?;
    if cpu < 0 || mem < 0 {
        return Err(ApiError::bad_request("cpu and mem must not be negative"));
    }
    conditions.cpu = units::cpu_text(cpu);
    conditions.mem = units::mem_text(mem);
    conditions.storage = units::mem_text(storage);
    conditions.gpu.mem = units::mem_text(gpu_mem);
    if conditions.executornames == ["*"] {
        conditions.executornames.clear();
    }
    for executorname in &conditions.executornames {
        name("conditions.executornames[]", executorname)?;
    }
    Ok(spec)
}

/// Parses an executor's available cpu/mem: `""` means unlimited (`None`).
pub fn available(cpu: &str, mem: &str) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let cpu = match cpu.trim() {
        "" => None,
        text => Some(units::parse_cpu_millis(text).map_err(ApiError::bad_request)?),
    };
    let mem = match mem.trim() {
        "" => None,
        text => Some(units::parse_mem_mib(text).map_err(ApiError::bad_request)?),
    };
    Ok((cpu, mem))
}

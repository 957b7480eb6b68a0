//! Facts about the machine a node runs on, read from /proc and libc (the only module that
//! inspects the OS): the cheap [`facts`] for status gossip, the full [`inventory`] for the
//! `inventory` fleet query, the user lookup, root check and process-group kill the shell
//! executor needs, and `write_private` for secret key files.
//!
//! Parsing is kept apart from IO: the `parse_*` functions are pure, take the text of a /proc
//! (or /etc) file and are unit tested on odd content. Reads are bounded and nothing here
//! panics on what the kernel reports; a fact that cannot be read is 0 (or empty) and the
//! reason is logged at debug level. [`facts`] does a few small reads and one `statvfs`, no
//! subprocesses. [`inventory`] calls `statvfs` on every real mount, which can block on a hung
//! network filesystem, so async callers should run it on a blocking thread with a deadline.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read as _};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tracing::debug;

const MEMINFO: &str = "/proc/meminfo";
const LOADAVG: &str = "/proc/loadavg";
const UPTIME: &str = "/proc/uptime";
const MOUNTS: &str = "/proc/self/mounts";
const CPUINFO: &str = "/proc/cpuinfo";
const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Read limit for small files (meminfo, loadavg, uptime, os-release).
const SMALL_FILE_LIMIT: u64 = 64 * 1024;
/// Read limit for /proc/cpuinfo: the first "model name" is in the first processor's block.
const CPUINFO_LIMIT: u64 = 64 * 1024;
/// Read limit for the mount table, which is long on hosts running many containers.
const MOUNTS_LIMIT: u64 = 4 * 1024 * 1024;
/// At most this many entries in the inventory's "disks" and "addresses".
const MAX_DISKS: usize = 64;
const MAX_ADDRESSES: usize = 64;
/// Buffer bounds for `getpwnam_r`.
const PASSWD_BUF_MIN: usize = 1024;
const PASSWD_BUF_MAX: usize = 1024 * 1024;

/// Filesystem types that are not storage: left out of the inventory's "disks". Every type
/// starting with "cgroup" is left out too. Overlay (container roots) is kept.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "tmpfs",
    "devtmpfs",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "autofs",
    "fusectl",
    "configfs",
    "hugetlbfs",
    "nsfs",
    "binfmt_misc",
    "ramfs",
    "squashfs",
];

/// Cheap facts for status gossip.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostFacts {
    /// Available parallelism (`std::thread::available_parallelism`).
    pub cpus: u32,
    /// /proc/loadavg 1, 5 and 15 minute load averages, times 1000, rounded.
    pub load_milli: [u64; 3],
    /// /proc/meminfo MemTotal.
    pub memory_total_bytes: u64,
    /// /proc/meminfo MemAvailable.
    pub memory_available_bytes: u64,
    /// `statvfs` of the given path: `f_blocks * f_frsize`.
    pub disk_total_bytes: u64,
    /// `statvfs` of the given path: `f_bavail * f_frsize`.
    pub disk_available_bytes: u64,
    /// /proc/uptime first number, whole seconds.
    pub host_uptime_seconds: u64,
}

/// Reads the facts; `disk_path` is the node's data dir. Never fails: a fact that cannot be
/// read is 0 (logged at debug level).
pub fn facts(disk_path: &Path) -> HostFacts {
    let memory = memory();
    let disk = disk_space(disk_path).unwrap_or_default();
    HostFacts {
        cpus: cpus(),
        load_milli: load().map(|load| load.map(to_milli)).unwrap_or_default(),
        memory_total_bytes: memory.total.unwrap_or(0),
        memory_available_bytes: memory.available.unwrap_or(0),
        disk_total_bytes: disk.total_bytes,
        disk_available_bytes: disk.available_bytes,
        host_uptime_seconds: uptime_seconds(),
    }
}

/// Full inventory for the `inventory` fleet query, as a JSON object with keys:
/// "hostname", "os" (PRETTY_NAME from /etc/os-release, else "Linux"), "kernel" (uname
/// release), "arch" (uname machine), "cpus" (number), "cpu_model" (first "model name" in
/// /proc/cpuinfo, else ""), "memory_total_bytes", "memory_available_bytes",
/// "disks": `[{"mount", "device", "fstype", "total_bytes", "available_bytes"}]` for real
/// filesystems from /proc/self/mounts (pseudo filesystems left out, deduplicated by device and
/// mount point, at most 64), "addresses": `[{"interface", "address"}]` from `getifaddrs` (IPv4
/// and IPv6, at most 64), "uptime_seconds" (host) and "load" (1, 5 and 15 minute floats).
///
/// Never fails: what cannot be read is 0, "" or empty. `statvfs` on a hung network mount can
/// block; run this off the async runtime.
pub fn inventory() -> Value {
    let uts = uname().unwrap_or_default();
    let memory = memory();
    let os = OS_RELEASE
        .iter()
        .find_map(|path| read_bounded(Path::new(path), SMALL_FILE_LIMIT))
        .and_then(|text| parse_os_release_pretty_name(&text))
        .unwrap_or_else(|| "Linux".to_owned());
    let cpu_model = read_bounded(Path::new(CPUINFO), CPUINFO_LIMIT)
        .and_then(|text| parse_cpu_model(&text))
        .unwrap_or_default();
    let disks: Vec<Value> = read_bounded(Path::new(MOUNTS), MOUNTS_LIMIT)
        .map(|text| parse_mounts(&text))
        .unwrap_or_default()
        .into_iter()
        .map(|mount| {
            let space = disk_space(Path::new(&mount.mount)).unwrap_or_default();
            json!({
                "mount": mount.mount,
                "device": mount.device,
                "fstype": mount.fstype,
                "total_bytes": space.total_bytes,
                "available_bytes": space.available_bytes,
            })
        })
        .collect();
    let addresses: Vec<Value> = interface_addresses()
        .into_iter()
        .map(|(interface, address)| {
            json!({ "interface": interface, "address": address.to_string() })
        })
        .collect();
    json!({
        "hostname": uts.nodename,
        "os": os,
        "kernel": uts.release,
        "arch": uts.machine,
        "cpus": cpus(),
        "cpu_model": cpu_model,
        "memory_total_bytes": memory.total.unwrap_or(0),
        "memory_available_bytes": memory.available.unwrap_or(0),
        "disks": disks,
        "addresses": addresses,
        "uptime_seconds": uptime_seconds(),
        "load": load().unwrap_or_default(),
    })
}

/// Uid and gid of a user name (`getpwnam_r` with a bounded buffer). The error names the user
/// if it is unknown or the lookup fails.
pub fn user_ids(name: &str) -> anyhow::Result<(u32, u32)> {
    let Ok(c_name) = CString::new(name) else {
        bail!("invalid user name {name:?}: it contains a NUL byte");
    };
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let hint = unsafe { libc::sysconf(libc::_SC_GETPW_R_SIZE_MAX) };
    let mut len = usize::try_from(hint)
        .unwrap_or(0)
        .clamp(PASSWD_BUF_MIN, PASSWD_BUF_MAX);
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; len];
        let mut pwd = MaybeUninit::<libc::passwd>::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: c_name is NUL-terminated and outlives the call; pwd and result are valid,
        // writable out-pointers; buf is writable for exactly buf.len() bytes and outlives every
        // use of the strings getpwnam_r points into it (we only copy the two ids out).
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                pwd.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if !result.is_null() => {
                // SAFETY: getpwnam_r returned 0 with a non-null result, so it filled in pwd
                // (which was also zero-initialized, a valid bit pattern for passwd).
                let pwd = unsafe { pwd.assume_init() };
                return Ok((pwd.pw_uid, pwd.pw_gid));
            }
            // POSIX says "not found" is 0 with a null result; some NSS modules report it as
            // ENOENT or ESRCH instead.
            0 | libc::ENOENT | libc::ESRCH => bail!("unknown user {name:?}"),
            libc::ERANGE if len < PASSWD_BUF_MAX => len = (len * 2).min(PASSWD_BUF_MAX),
            err => {
                return Err(io::Error::from_raw_os_error(err))
                    .with_context(|| format!("looking up user {name:?}"));
            }
        }
    }
}

/// Whether this process runs as root (`geteuid() == 0`).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Sends SIGKILL to process group `pgid` (`kill(-pgid, SIGKILL)`); ESRCH (the group is already
/// gone) is not an error. Refuses (`InvalidInput`) a `pgid` that is 0, 1, beyond `pid_t`, or
/// this process's own group, so a bug can never signal every process or the node itself.
pub fn kill_process_group(pgid: u32) -> io::Result<()> {
    let refuse = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to kill process group {pgid}: {why}"),
        )
    };
    let pid = match libc::pid_t::try_from(pgid) {
        Ok(pid) if pid > 1 => pid,
        Ok(_) => return Err(refuse("it must be greater than 1")),
        Err(_) => return Err(refuse("it is not a valid process id")),
    };
    // SAFETY: getpgrp has no preconditions and cannot fail.
    if unsafe { libc::getpgrp() } == pid {
        return Err(refuse("it is this process's own group"));
    }
    // SAFETY: kill has no memory-safety preconditions. pid > 1, so -pid names exactly one
    // process group: never -1 (every process) nor 0 (our own group).
    if unsafe { libc::kill(-pid, libc::SIGKILL) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

// ---------------------------------------------------------------------------------------------
// IO: each reader logs why a fact is missing and returns None (or a default).

/// Reads at most `limit` bytes of a file as (lossy) UTF-8. If the limit cut the file, the
/// partial last line is dropped so parsers never see a truncated entry.
fn read_bounded(path: &Path, limit: u64) -> Option<String> {
    let mut bytes = Vec::new();
    let read = File::open(path).and_then(|file| file.take(limit).read_to_end(&mut bytes));
    if let Err(err) = read {
        debug!(path = %path.display(), %err, "cannot read host fact");
        return None;
    }
    if u64::try_from(bytes.len()).is_ok_and(|len| len >= limit) {
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(keep);
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn cpus() -> u32 {
    match std::thread::available_parallelism() {
        Ok(n) => u32::try_from(n.get()).unwrap_or(u32::MAX),
        Err(err) => {
            debug!(%err, "cannot read available parallelism");
            0
        }
    }
}

fn memory() -> MemInfo {
    let memory = read_bounded(Path::new(MEMINFO), SMALL_FILE_LIMIT)
        .map(|text| parse_meminfo(&text))
        .unwrap_or_default();
    if memory.total.is_none() || memory.available.is_none() {
        debug!(?memory, "MemTotal or MemAvailable missing from {MEMINFO}");
    }
    memory
}

fn load() -> Option<[f64; 3]> {
    let load = parse_loadavg(&read_bounded(Path::new(LOADAVG), SMALL_FILE_LIMIT)?);
    if load.is_none() {
        debug!("cannot parse {LOADAVG}");
    }
    load
}

fn uptime_seconds() -> u64 {
    let uptime =
        read_bounded(Path::new(UPTIME), SMALL_FILE_LIMIT).and_then(|text| parse_uptime(&text));
    match uptime {
        // Truncates to whole seconds; `as` saturates and the parser rejects NaN and negatives.
        Some(seconds) => seconds as u64,
        None => {
            debug!("cannot read {UPTIME}");
            0
        }
    }
}

/// Total and available bytes of the filesystem holding a path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DiskSpace {
    total_bytes: u64,
    available_bytes: u64,
}

fn disk_space(path: &Path) -> Option<DiskSpace> {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        debug!(path = %path.display(), "path contains a NUL byte; no statvfs");
        return None;
    };
    let mut stat = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: c_path is NUL-terminated and outlives the call; stat is writable storage for
    // exactly one statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        let err = io::Error::last_os_error();
        debug!(path = %path.display(), %err, "statvfs failed");
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled in stat (zero-initialized before, which is a
    // valid bit pattern for this plain-integer struct anyway).
    let stat = unsafe { stat.assume_init() };
    // The field types differ between targets (u32 or u64); none is wider than u64.
    #[allow(clippy::unnecessary_cast)]
    let (blocks, available, fragment) = (
        stat.f_blocks as u64,
        stat.f_bavail as u64,
        stat.f_frsize as u64,
    );
    Some(DiskSpace {
        total_bytes: blocks.saturating_mul(fragment),
        available_bytes: available.saturating_mul(fragment),
    })
}

/// The uname fields the inventory reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Uname {
    nodename: String,
    release: String,
    machine: String,
}

fn uname() -> Option<Uname> {
    let mut uts = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: uts is writable storage for exactly one utsname.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        let err = io::Error::last_os_error();
        debug!(%err, "uname failed");
        return None;
    }
    // SAFETY: uname returned 0, so it filled in uts (zero-initialized before, which is a valid
    // bit pattern for these char arrays anyway).
    let uts = unsafe { uts.assume_init() };
    Some(Uname {
        nodename: c_chars_to_string(&uts.nodename),
        release: c_chars_to_string(&uts.release),
        machine: c_chars_to_string(&uts.machine),
    })
}

/// The list `getifaddrs` returned, freed exactly once on drop (even if we unwind).
struct IfAddrs(*mut libc::ifaddrs);

impl Drop for IfAddrs {
    fn drop(&mut self) {
        // SAFETY: self.0 came from a successful getifaddrs, is freed only here, and nothing
        // borrowed from the list outlives self (names and addresses are copied out).
        unsafe { libc::freeifaddrs(self.0) };
    }
}

/// (interface, address) for every IPv4 and IPv6 address of every interface, at most 64.
fn interface_addresses() -> Vec<(String, IpAddr)> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: head is a valid out-pointer; on success getifaddrs stores a list in it that the
    // IfAddrs guard below frees.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        let err = io::Error::last_os_error();
        debug!(%err, "getifaddrs failed");
        return Vec::new();
    }
    let list = IfAddrs(head);
    let mut out = Vec::new();
    let mut cursor = list.0.cast_const();
    while !cursor.is_null() && out.len() < MAX_ADDRESSES {
        // SAFETY: cursor is a non-null node of the list, which stays alive until `list` drops.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next.cast_const();
        let Some(address) = sockaddr_ip(entry.ifa_addr.cast_const()) else {
            continue;
        };
        let interface = if entry.ifa_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null ifa_name is a NUL-terminated string owned by the live list.
            unsafe { CStr::from_ptr(entry.ifa_name) }
                .to_string_lossy()
                .into_owned()
        };
        out.push((interface, address));
    }
    out
}

/// The IP address in a socket address, if it is IPv4 or IPv6.
fn sockaddr_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: addr is non-null and, coming from getifaddrs, points to a socket address, which
    // always starts with the family field.
    let family = unsafe { (*addr).sa_family };
    match i32::from(family) {
        libc::AF_INET => {
            // SAFETY: family AF_INET means the storage holds a whole sockaddr_in.
            let v4 = unsafe { addr.cast::<libc::sockaddr_in>().read_unaligned() };
            // s_addr is in network byte order, i.e. its in-memory bytes are the octets.
            Some(IpAddr::V4(Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes())))
        }
        libc::AF_INET6 => {
            // SAFETY: family AF_INET6 means the storage holds a whole sockaddr_in6.
            let v6 = unsafe { addr.cast::<libc::sockaddr_in6>().read_unaligned() };
            Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// A fixed-size C char array up to its first NUL (or its end), as lossy UTF-8.
fn c_chars_to_string(chars: &[libc::c_char]) -> String {
    // c_char is i8 or u8 depending on the target; either way this reinterprets the byte.
    #[allow(clippy::unnecessary_cast)]
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Pure parsing of /proc and /etc text.

/// The two /proc/meminfo fields we report, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct MemInfo {
    total: Option<u64>,
    available: Option<u64>,
}

/// MemTotal and MemAvailable from /proc/meminfo text ("MemTotal:  24684084 kB").
fn parse_meminfo(text: &str) -> MemInfo {
    let mut info = MemInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut info.total,
            "MemAvailable" => &mut info.available,
            _ => continue,
        };
        if slot.is_none() {
            *slot = parse_meminfo_bytes(value);
        }
    }
    info
}

/// "24684084 kB" as bytes; a bare number is bytes. None on anything else or on overflow.
fn parse_meminfo_bytes(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace();
    let number: u64 = parts.next()?.parse().ok()?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(number),
        (Some(unit), None) if unit.eq_ignore_ascii_case("kB") => number.checked_mul(1024),
        _ => None,
    }
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg text ("1.97 0.91 0.36 4/123 10869").
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(parse_non_negative);
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// Host uptime in seconds: the first number of /proc/uptime text ("350735.47 234388.90").
fn parse_uptime(text: &str) -> Option<f64> {
    parse_non_negative(text.split_whitespace().next()?)
}

/// A finite, non-negative decimal.
fn parse_non_negative(field: &str) -> Option<f64> {
    field
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// A load average times 1000, rounded; NaN and negatives are 0, huge values saturate.
fn to_milli(load: f64) -> u64 {
    (load * 1000.0).round() as u64
}

/// One real filesystem from the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    device: String,
    mount: String,
    fstype: String,
}

/// Real filesystems from /proc/self/mounts text: pseudo filesystems left out, deduplicated by
/// (device, mount point) keeping the first, at most 64. Malformed lines are skipped.
fn parse_mounts(text: &str) -> Vec<Mount> {
    let mut seen = HashSet::new();
    let mut mounts = Vec::new();
    for line in text.lines() {
        if mounts.len() >= MAX_DISKS {
            break;
        }
        let mut fields = line.split_whitespace();
        let (Some(device), Some(mount), Some(fstype)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if is_pseudo_fs(fstype) {
            continue;
        }
        let entry = Mount {
            device: unescape_mount_field(device),
            mount: unescape_mount_field(mount),
            fstype: unescape_mount_field(fstype),
        };
        if seen.insert((entry.device.clone(), entry.mount.clone())) {
            mounts.push(entry);
        }
    }
    mounts
}

fn is_pseudo_fs(fstype: &str) -> bool {
    fstype.starts_with("cgroup") || PSEUDO_FS.contains(&fstype)
}

/// Undoes the kernel's octal escapes in a mount table field ("\040" is a space); a backslash
/// not followed by three octal digits (of a byte value) is kept as is.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(byte) = bytes.get(i + 1..i + 4).and_then(octal_byte) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Three octal digits as a byte, if they are octal digits and the value fits.
fn octal_byte(digits: &[u8]) -> Option<u8> {
    digits.iter().try_fold(0u8, |acc, &d| {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        acc.checked_mul(8)?.checked_add(d - b'0')
    })
}

/// PRETTY_NAME from os-release text, unquoted; None if missing or empty.
fn parse_os_release_pretty_name(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("PRETTY_NAME=")?;
        let value = unquote_shell_value(value.trim());
        (!value.is_empty()).then_some(value)
    })
}

/// An os-release value: "double quoted" (backslash escapes undone), 'single quoted' or bare.
fn unquote_shell_value(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        out
    } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.to_owned()
    } else {
        value.to_owned()
    }
}

/// The first "model name" in /proc/cpuinfo text ("model name\t: AMD EPYC").
fn parse_cpu_model(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// Writes a new file readable only by this user (a secret key), fsynced; fails if it
/// exists.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("sync {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
    use std::process::Command;

    const MEMINFO_SAMPLE: &str = "\
MemTotal:       24684084 kB
MemFree:        20623944 kB
MemAvailable:   23010084 kB
Buffers:           25076 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    #[test]
    fn meminfo_sample_is_parsed_to_bytes() {
        let info = parse_meminfo(MEMINFO_SAMPLE);
        assert_eq!(info.total, Some(24_684_084 * 1024));
        assert_eq!(info.available, Some(23_010_084 * 1024));
    }

    #[test]
    fn meminfo_odd_content_gives_none_not_panics() {
        assert_eq!(parse_meminfo(""), MemInfo::default());
        // Old kernels have no MemAvailable; garbage, overflow and unknown units are None.
        let info = parse_meminfo("MemTotal: 100 kB\nMemFree 5 kB\n:\n\u{0}\n");
        assert_eq!(
            info,
            MemInfo {
                total: Some(102_400),
                available: None
            }
        );
        let info = parse_meminfo("MemTotal: lots kB\nMemAvailable: 18446744073709551615 kB\n");
        assert_eq!(info, MemInfo::default());
        let info = parse_meminfo("MemTotal: 7 MB\nMemAvailable: 7 kB extra\n");
        assert_eq!(info, MemInfo::default());
        // A bare number is bytes; the first occurrence wins.
        let info = parse_meminfo("MemTotal: 4096\nMemTotal: 1 kB\nMemAvailable:   2 KB\n");
        assert_eq!(
            info,
            MemInfo {
                total: Some(4096),
                available: Some(2048)
            }
        );
    }

    #[test]
    fn loadavg_sample_is_parsed() {
        assert_eq!(
            parse_loadavg("1.97 0.91 0.36 4/123 10869\n"),
            Some([1.97, 0.91, 0.36])
        );
        assert_eq!(
            parse_loadavg("1.97 0.91 0.36 4/123 10869\n").map(|l| l.map(to_milli)),
            Some([1970, 910, 360])
        );
    }

    #[test]
    fn loadavg_odd_content_is_none() {
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("1.0 2.0"), None);
        assert_eq!(parse_loadavg("1.0 x 3.0"), None);
        assert_eq!(parse_loadavg("1.0 -2.0 3.0"), None);
        assert_eq!(parse_loadavg("NaN 2.0 3.0"), None);
        assert_eq!(parse_loadavg("inf 2.0 3.0"), None);
    }

    #[test]
    fn milli_rounds_and_saturates() {
        assert_eq!(to_milli(0.0), 0);
        assert_eq!(to_milli(1.9996), 2000);
        assert_eq!(to_milli(0.0004), 0);
        assert_eq!(to_milli(12.3456), 12_346);
        assert_eq!(to_milli(1e300), u64::MAX);
        assert_eq!(to_milli(f64::NAN), 0);
        assert_eq!(to_milli(-1.0), 0);
    }

    #[test]
    fn uptime_is_the_first_number() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350_735.47));
        assert_eq!(parse_uptime("12"), Some(12.0));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_uptime("soon 1.0"), None);
    }

    fn mount(device: &str, mount: &str, fstype: &str) -> Mount {
        Mount {
            device: device.into(),
            mount: mount.into(),
            fstype: fstype.into(),
        }
    }

    #[test]
    fn mounts_keep_real_filesystems_once() {
        let text = "\
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12334460k 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
/dev/vda / ext4 rw,relatime,discard 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw,lowerdir=/a 0 0
/dev/vda / ext4 rw,relatime,discard 0 0
/dev/vda /var/lib/docker ext4 rw,relatime 0 0
/dev/loop0 /snap/core/1 squashfs ro 0 0
/dev/sdb1 /mnt/my\\040disk vfat rw 0 0
short line
";
        assert_eq!(
            parse_mounts(text),
            vec![
                mount("/dev/vda", "/", "ext4"),
                mount("overlay", "/var/lib/docker/overlay2/abc/merged", "overlay"),
                mount("/dev/vda", "/var/lib/docker", "ext4"),
                mount("/dev/sdb1", "/mnt/my disk", "vfat"),
            ]
        );
    }

    #[test]
    fn mounts_are_capped() {
        let text: String = (0..200)
            .map(|i| format!("/dev/sd{i} /m{i} ext4 rw 0 0\n"))
            .collect();
        let mounts = parse_mounts(&text);
        assert_eq!(mounts.len(), MAX_DISKS);
        assert_eq!(mounts[63], mount("/dev/sd63", "/m63", "ext4"));
        assert!(parse_mounts("").is_empty());
    }

    #[test]
    fn mount_fields_are_unescaped_defensively() {
        assert_eq!(
            unescape_mount_field("a\\040b\\011c\\134d\\012"),
            "a b\tc\\d\n"
        );
        // Not an escape: kept as is, never out of bounds.
        assert_eq!(unescape_mount_field("x\\"), "x\\");
        assert_eq!(unescape_mount_field("x\\04"), "x\\04");
        assert_eq!(unescape_mount_field("x\\089"), "x\\089");
        assert_eq!(unescape_mount_field("x\\777"), "x\\777");
        assert_eq!(unescape_mount_field("\\377"), "\u{fffd}");
    }

    #[test]
    fn os_release_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            parse_os_release_pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            parse_os_release_pretty_name("PRETTY_NAME=Alpine").as_deref(),
            Some("Alpine")
        );
        assert_eq!(
            parse_os_release_pretty_name("PRETTY_NAME='A B'").as_deref(),
            Some("A B")
        );
        assert_eq!(
            parse_os_release_pretty_name("PRETTY_NAME=\"say \\\"hi\\\" \\\\\"").as_deref(),
            Some("say \"hi\" \\")
        );
        assert_eq!(
            parse_os_release_pretty_name("PRETTY_NAME=\"\"\nNAME=x"),
            None
        );
        assert_eq!(
            parse_os_release_pretty_name("PRETTY_NAME=\""),
            Some("\"".into())
        );
        assert_eq!(parse_os_release_pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\n\
                    model name\t: Other\n";
        assert_eq!(parse_cpu_model(text).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(
            parse_cpu_model("processor : 0\nFeatures : fp asimd\n"),
            None
        );
        assert_eq!(parse_cpu_model(""), None);
    }

    #[test]
    fn c_chars_stop_at_nul_or_end() {
        let chars = [
            b'a' as libc::c_char,
            b'b' as libc::c_char,
            0,
            b'c' as libc::c_char,
        ];
        assert_eq!(c_chars_to_string(&chars), "ab");
        assert_eq!(c_chars_to_string(&chars[..2]), "ab");
        assert_eq!(c_chars_to_string(&[]), "");
    }

    #[test]
    fn read_bounded_drops_a_cut_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "one\ntwo\nthree").unwrap();
        assert_eq!(
            read_bounded(&path, 1024).as_deref(),
            Some("one\ntwo\nthree")
        );
        assert_eq!(read_bounded(&path, 10).as_deref(), Some("one\ntwo\n"));
        assert_eq!(read_bounded(&path, 2).as_deref(), Some(""));
        assert_eq!(read_bounded(&dir.path().join("missing"), 1024), None);
    }

    #[test]
    fn facts_of_this_machine() {
        let facts = facts(Path::new("/"));
        assert!(facts.cpus > 0, "{facts:?}");
        assert!(facts.memory_total_bytes > 0, "{facts:?}");
        assert!(
            facts.memory_available_bytes <= facts.memory_total_bytes,
            "{facts:?}"
        );
        assert!(facts.disk_total_bytes > 0, "{facts:?}");
        assert!(
            facts.disk_available_bytes <= facts.disk_total_bytes,
            "{facts:?}"
        );
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(serde_json::from_value::<HostFacts>(json).unwrap(), facts);
    }

    #[test]
    fn facts_of_a_missing_path_have_no_disk() {
        let facts = facts(Path::new("/no/such/dir/for/colonymesh"));
        assert_eq!((facts.disk_total_bytes, facts.disk_available_bytes), (0, 0));
        assert!(facts.cpus > 0);
    }

    #[test]
    fn inventory_of_this_machine() {
        let inventory = inventory();
        for key in [
            "hostname",
            "os",
            "kernel",
            "arch",
            "cpus",
            "cpu_model",
            "memory_total_bytes",
            "memory_available_bytes",
            "disks",
            "addresses",
            "uptime_seconds",
            "load",
        ] {
            assert!(inventory.get(key).is_some(), "no {key} in {inventory}");
        }
        assert!(inventory["cpus"].as_u64().unwrap() > 0);
        assert!(!inventory["kernel"].as_str().unwrap().is_empty());
        assert!(!inventory["arch"].as_str().unwrap().is_empty());
        assert!(!inventory["os"].as_str().unwrap().is_empty());
        assert_eq!(inventory["load"].as_array().unwrap().len(), 3);
        let disks = inventory["disks"].as_array().unwrap();
        assert!(!disks.is_empty(), "{inventory}");
        for disk in disks {
            for key in [
                "mount",
                "device",
                "fstype",
                "total_bytes",
                "available_bytes",
            ] {
                assert!(disk.get(key).is_some(), "no {key} in {disk}");
            }
        }
        let addresses = inventory["addresses"].as_array().unwrap();
        assert!(
            addresses
                .iter()
                .any(|a| a["interface"] == "lo" && a["address"] == "127.0.0.1"),
            "{inventory}"
        );
    }

    #[test]
    fn user_ids_of_root_and_of_nobody() {
        assert_eq!(user_ids("root").unwrap(), (0, 0));
        let err = user_ids("no-such-user-xyz").unwrap_err();
        assert!(format!("{err:#}").contains("no-such-user-xyz"), "{err:#}");
        let err = user_ids("nul\0byte").unwrap_err();
        assert!(format!("{err:#}").contains("nul"), "{err:#}");
    }

    #[test]
    fn is_root_matches_the_effective_uid() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(is_root(), unsafe { libc::geteuid() } == 0);
    }

    #[test]
    fn kill_refuses_groups_that_would_hit_everything() {
        for pgid in [0, 1, u32::MAX, 1 << 31] {
            let err = kill_process_group(pgid).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{pgid}: {err}");
        }
        // SAFETY: getpgrp has no preconditions.
        let own = u32::try_from(unsafe { libc::getpgrp() }).unwrap();
        if own > 1 {
            let err = kill_process_group(own).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    fn kill_process_group_kills_the_group() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        kill_process_group(child.id()).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }

    #[test]
    fn kill_of_a_group_that_is_gone_is_ok() {
        // Above the kernel's PID_MAX_LIMIT (4194304), so no such group exists: ESRCH.
        kill_process_group(i32::MAX as u32).unwrap();
    }
}

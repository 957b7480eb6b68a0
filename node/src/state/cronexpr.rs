//! Cron expressions as ColonyOS reads them: six fields with seconds first
//! (`second minute hour day-of-month month day-of-week`, e.g. `0/5 * * * * *`), or a
//! descriptor (`@hourly`, `@daily`, ...). Times are UTC. Pure arithmetic: `apply` computes
//! the next run from the command's time, so every replica computes the same.
//!
//! Day matching follows the classic rule: when both day fields are restricted, a day matches
//! if either does; when one is `*`, only the other counts.

/// A parsed expression: one bit per allowed value of each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_any: bool,
    weekdays_any: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses one value of a field: a number, or a name for months (1-based) and weekdays.
fn value(text: &str, names: &[&str], first: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + first);
    }
    text.parse::<u32>()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// Parses one field into a bit set over `min..=max`.
fn field(text: &str, min: u32, max: u32, names: &[&str], name: &str) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("{name}: step {step:?} is not a number"))?;
                if step == 0 {
                    return Err(format!("{name}: step must be at least 1"));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((low, high)) => (
                    value(low, names, min).map_err(|e| format!("{name}: {e}"))?,
                    value(high, names, min).map_err(|e| format!("{name}: {e}"))?,
                ),
                None => {
                    let single = value(range, names, min).map_err(|e| format!("{name}: {e}"))?;
                    // `5/15` means from 5 to the end in steps of 15.
                    (single, if part.contains('/') { max } else { single })
                }
            },
        };
        if low < min || high > max || low > high {
            return Err(format!(
                "{name}: {range:?} is outside {min}-{max} or reversed"
            ));
        }
        for v in (low..=high).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

impl Schedule {
    /// Parses an expression; the error names the field that is wrong.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        let expression = match expression.trim() {
            "@yearly" | "@annually" => "0 0 0 1 1 *",
            "@monthly" => "0 0 0 1 * *",
            "@weekly" => "0 0 0 * * 0",
            "@daily" | "@midnight" => "0 0 0 * * *",
            "@hourly" => "0 0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let [second, minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "cron expression {expression:?} must have 6 fields: second minute hour \
                 day-of-month month day-of-week"
            ));
        };
        let mut weekdays = field(weekday, 0, 7, &WEEKDAYS, "day-of-week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7); // 7 is Sunday too
        }
        let any = |f: &str| f == "*" || f == "?";
        Ok(Schedule {
            seconds: field(second, 0, 59, &[], "second")?,
            minutes: field(minute, 0, 59, &[], "minute")?,
            hours: field(hour, 0, 23, &[], "hour")?,
            days: field(day, 1, 31, &[], "day-of-month")?,
            months: field(month, 1, 12, &MONTHS, "month")?,
            weekdays,
            days_any: any(day),
            weekdays_any: any(weekday),
        })
    }

    fn day_matches(&self, days: i64) -> bool {
        let (_, _, day) = civil_from_days(days);
        let by_date = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday(days)) != 0;
        if self.days_any || self.weekdays_any {
            by_date && by_weekday
        } else {
            by_date || by_weekday
        }
    }

    /// The first matching second strictly after `after_secs` (Unix seconds), looking at
    /// most 8 years ahead (an expression like `0 0 0 30 2 *` never matches).
    pub fn next_after(&self, after_secs: i64) -> Option<i64> {
        let limit = after_secs.saturating_add(8 * 366 * 86_400);
        let mut t = after_secs + 1;
        while t <= limit {
            let days = t.div_euclid(86_400);
            let in_day = t.rem_euclid(86_400);
            let (year, month, _) = civil_from_days(days);
            let (hour, minute, second) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
            if self.months & (1 << month) == 0 {
                let (y, m) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                t = days_from_civil(y, m, 1) * 86_400;
            } else if !self.day_matches(days) {
                t = (days + 1) * 86_400;
            } else if self.hours & (1 << hour) == 0 {
                t = days * 86_400 + (hour + 1) * 3600;
            } else if self.minutes & (1 << minute) == 0 {
                t = days * 86_400 + hour * 3600 + (minute + 1) * 60;
            } else if self.seconds & (1 << second) == 0 {
                t += 1;
            } else {
                return Some(t);
            }
        }
        None
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 0 = Sunday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time.
    fn at(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
    }

    fn next(expression: &str, after: i64) -> Option<i64> {
        Schedule::parse(expression).unwrap().next_after(after)
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 59, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(weekday(0), 4, "1970-01-01 was a Thursday");
        assert_eq!(at(2000, 3, 1, 0, 0, 0), 951_868_800);
    }

    #[test]
    fn next_runs_of_common_expressions() {
        let t = at(2026, 11, 29, 10, 17, 3);
        assert_eq!(next("0/5 * * * * *", t), Some(at(2026, 11, 29, 10, 17, 5)));
        assert_eq!(next("* * * * * *", t), Some(t + 1));
        assert_eq!(next("0 0 * * * *", t), Some(at(2026, 11, 29, 11, 0, 0)));
        assert_eq!(next("@daily", t), Some(at(2026, 11, 30, 0, 0, 0)));
        assert_eq!(next("30 15 9 1 JAN *", t), Some(at(2027, 1, 1, 9, 15, 30)));
        // 2026-11-29 is a Sunday: the next Monday 08:00 is the 30th.
        assert_eq!(next("0 0 8 * * MON", t), Some(at(2026, 11, 30, 8, 0, 0)));
        assert_eq!(next("0 0 8 * * 7", t), Some(at(2026, 12, 6, 8, 0, 0)));
        // Both day fields restricted: either matches (the 1st, or a Monday).
        assert_eq!(next("0 0 0 1 * 1", t), Some(at(2026, 11, 30, 0, 0, 0)));
        assert_eq!(next("0 0 0 29 2 *", t), Some(at(2028, 2, 29, 0, 0, 0)));
        assert_eq!(next("0 0 0 30 2 *", t), None);
        assert_eq!(
            next("0 10-20/5 * * * *", t),
            Some(at(2026, 11, 29, 10, 20, 0))
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (expression, reason) in [
            ("* * * * *", "must have 6 fields"),
            ("60 * * * * *", "second"),
            ("* * 24 * * *", "hour"),
            ("* * * 0 * *", "day-of-month"),
            ("* * * * FOO *", "month"),
            ("*/0 * * * * *", "step"),
            ("* * * * * 9", "day-of-week"),
        ] {
            let error = Schedule::parse(expression).unwrap_err();
            assert!(error.contains(reason), "{expression}: {error}");
        }
    }
}

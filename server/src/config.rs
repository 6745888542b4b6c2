//! The community configuration: the built-in 财工街社区, or a TOML file that replaces it — one
//! community at the top level, or several as `[[community]]` tables, each with an `id`.
//!
//! A bad file is refused at start with its line and the reason, never half-applied.

use std::path::{Path, PathBuf};

use hongfan_shared::community::{Building, Place};
use hongfan_shared::office::{Office, OfficeChange, OfficeEvent};
use hongfan_shared::{
    Actor, Category, CategoryId, Community, CommunityId, Compound, CompoundId, EscalationPolicy,
    Millis, Target, Targets,
};
use serde::Deserialize;
use toml::Spanned;

/// The built-in community, written as a configuration file so that it doubles as the example.
pub const BUILT_IN: &str = include_str!("../community.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{source_name}, line {line}: {reason}")]
    Invalid { source_name: String, line: usize, reason: String },
}

/// Loads the communities from `path`, or the built-in one when there is none.
pub fn load(path: Option<&Path>) -> Result<Vec<Community>, ConfigError> {
    match path {
        None => parse(BUILT_IN, "built-in configuration"),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            parse(&text, &path.display().to_string())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Several communities, each a table of its own (and nothing else at the top).
    #[serde(default)]
    community: Vec<Spanned<File>>,
    /// Needed for each of several; one community alone is `default` unless it says.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    street_office: String,
    #[serde(default)]
    escalation: Option<Spanned<EscalationEntry>>,
    #[serde(default)]
    compound: Vec<Spanned<CompoundEntry>>,
    #[serde(default)]
    category: Vec<Spanned<CategoryEntry>>,
    #[serde(default)]
    quick_replies: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pauses: Option<Spanned<PauseEntry>>,
    #[serde(default)]
    recurring: Option<Spanned<RecurringEntry>>,
    #[serde(default)]
    points: Option<hongfan_shared::points::PointsRules>,
    #[serde(default)]
    goals: Option<hongfan_shared::community::Goals>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecurringEntry {
    reports: u32,
    within: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseEntry {
    reasons: Vec<String>,
    limit: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalationEntry {
    unclaimed_after: Spanned<String>,
    #[serde(default)]
    callback_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompoundEntry {
    id: String,
    name: String,
    station: String,
    grid: String,
    #[serde(default)]
    buildings: Vec<Building>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryEntry {
    id: String,
    name: String,
    name_en: String,
    icon: String,
    /// Description, room and notes only for the holder and supervisors.
    #[serde(default)]
    private: bool,
    #[serde(default)]
    phrases: Vec<String>,
    /// The kiosk shows 110 / 119 / 120 before the form.
    #[serde(default)]
    emergency: bool,
    #[serde(default)]
    retired: bool,
    /// 调解: how long a building head has to mediate (a dispute), when it may be handed to one.
    #[serde(default)]
    mediation: Option<Spanned<String>>,
    normal: Spanned<TargetEntry>,
    urgent: Spanned<TargetEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    respond: Spanned<String>,
    resolve: Spanned<String>,
}

/// Parses and checks a configuration; `source_name` names it in errors. The rules are the
/// office's own (`Office::check_community`), the same the admin page's edits keep: each
/// community's, and no compound in two.
pub fn parse(text: &str, source_name: &str) -> Result<Vec<Community>, ConfigError> {
    let invalid = |offset: usize, reason: String| ConfigError::Invalid {
        source_name: source_name.to_owned(),
        line: line_of(text, offset),
        reason,
    };
    let file: File = toml::from_str(text)
        .map_err(|e| invalid(e.span().map_or(0, |s| s.start), e.message().trim().to_owned()))?;
    let entries: Vec<(usize, File)> = if file.community.is_empty() {
        vec![(0, file)]
    } else {
        let bare = file.id.is_none()
            && file.name.is_empty()
            && file.street_office.is_empty()
            && file.escalation.is_none()
            && file.compound.is_empty()
            && file.category.is_empty()
            && file.quick_replies.is_empty()
            && file.pauses.is_none()
            && file.recurring.is_none()
            && file.points.is_none()
            && file.goals.is_none();
        if !bare {
            return Err(invalid(
                0,
                "with [[community]] tables, nothing else goes at the top".into(),
            ));
        }
        let mut entries = Vec::new();
        for entry in file.community {
            let start = entry.span().start;
            let entry = entry.into_inner();
            if entry.id.is_none() {
                return Err(invalid(start, "each [[community]] needs an id".into()));
            }
            if !entry.community.is_empty() {
                return Err(invalid(start, "a [[community]] holds no communities".into()));
            }
            entries.push((start, entry));
        }
        entries
    };
    // Each is checked as the office checks a community joining it.
    let mut office = Office::default();
    let mut communities = Vec::new();
    for (start, file) in entries {
        let community = community(file, start, &invalid, &office)?;
        let seq = office.seq + 1;
        let change = OfficeChange::Community { before: None, after: Box::new(community.clone()) };
        let event = OfficeEvent { seq, at: Default::default(), actor: Actor::system(), change };
        office.apply(&event).map_err(|why| invalid(start, why))?;
        communities.push(community);
    }
    Ok(communities)
}

/// One community of the file (its table at `start`), checked against those before it.
fn community(
    file: File,
    start: usize,
    invalid: &impl Fn(usize, String) -> ConfigError,
    office: &Office,
) -> Result<Community, ConfigError> {
    let id = file.id.clone().map(CommunityId).unwrap_or_default();
    if office.communities.contains_key(&id) {
        return Err(invalid(start, format!("community id {:?} is used twice", id.0)));
    }
    let duration = |d: &Spanned<String>| {
        let span = humantime::parse_duration(d.get_ref()).map_err(|e| {
            invalid(d.span().start, format!("{:?} is not a duration: {e}", d.get_ref()))
        })?;
        Ok(Millis(u64::try_from(span.as_millis()).unwrap_or(u64::MAX)))
    };
    let escalation = match &file.escalation {
        None => EscalationPolicy::default(),
        Some(e) => EscalationPolicy {
            unclaimed_after: duration(&e.get_ref().unclaimed_after)?,
            callback_after: match &e.get_ref().callback_after {
                Some(d) => duration(d)?,
                None => EscalationPolicy::default().callback_after,
            },
        },
    };
    let compounds = file
        .compound
        .iter()
        .map(|entry| {
            let c = entry.get_ref();
            Compound {
                id: CompoundId(c.id.clone()),
                name: c.name.clone(),
                station: c.station.clone(),
                grid: c.grid.clone(),
                buildings: c.buildings.clone(),
            }
        })
        .collect();
    let mut categories = Vec::new();
    for entry in &file.category {
        let c = entry.get_ref();
        let target = |t: &Spanned<TargetEntry>| -> Result<Target, ConfigError> {
            Ok(Target {
                respond: duration(&t.get_ref().respond)?,
                resolve: duration(&t.get_ref().resolve)?,
            })
        };
        categories.push(Category {
            id: CategoryId(c.id.clone()),
            name: c.name.clone(),
            name_en: c.name_en.clone(),
            icon: c.icon.clone(),
            targets: Targets { normal: target(&c.normal)?, urgent: target(&c.urgent)? },
            private: c.private,
            phrases: c.phrases.clone(),
            emergency: c.emergency,
            retired: c.retired,
            mediation: c.mediation.as_ref().map(&duration).transpose()?,
        });
    }
    let community = Community {
        id,
        name: file.name,
        street_office: file.street_office,
        compounds,
        categories,
        escalation,
        quick_replies: file.quick_replies,
        points: file.points.unwrap_or_default(),
        goals: file.goals.unwrap_or_default(),
        recurring: match &file.recurring {
            None => Default::default(),
            Some(r) => hongfan_shared::community::RecurringPolicy {
                reports: r.get_ref().reports,
                within: duration(&r.get_ref().within)?,
            },
        },
        pauses: match &file.pauses {
            None => Default::default(),
            Some(p) => hongfan_shared::community::PausePolicy {
                reasons: p.get_ref().reasons.clone(),
                limit: duration(&p.get_ref().limit)?,
            },
        },
    };
    office.check_community(&community).map_err(|problem| {
        let offset = match problem.place {
            Place::Community => start,
            Place::Escalation => file.escalation.as_ref().map_or(0, |e| e.span().start),
            Place::Compound(i) => file.compound.get(i).map_or(0, |e| e.span().start),
            Place::Category(i) => file.category.get(i).map_or(0, |e| e.span().start),
        };
        invalid(offset, problem.reason)
    })?;
    Ok(community)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_is_caigongjie_with_three_compounds_and_nine_categories() {
        let all = load(None).expect("built-in config parses");
        assert_eq!(all.len(), 1);
        let c = &all[0];
        assert_eq!(c.id.0, "default");
        assert_eq!(c.name, "财工街社区");
        assert_eq!(c.compounds.len(), 3);
        let names: Vec<&str> = c.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "助老",
                "低保",
                "救助",
                "计生",
                "矛盾纠纷",
                "设施报修",
                "环境卫生",
                "安全隐患",
                "其他"
            ]
        );
        let elderly = c.category(&CategoryId("elderly".into())).expect("elderly");
        assert_eq!(elderly.targets.normal.respond, Millis::from_mins(30));
    }

    fn error_of(text: &str) -> String {
        parse(text, "test.toml").expect_err("must be refused").to_string()
    }

    #[test]
    fn syntax_error_names_the_line() {
        let text = BUILT_IN.replacen("grid = \"第二网格\"", "grid = \"第二网格", 1);
        let line = BUILT_IN.lines().position(|l| l.contains("第二网格")).expect("line") + 1;
        let err = error_of(&text);
        assert!(err.starts_with(&format!("test.toml, line {line}:")), "{err}");
    }

    #[test]
    fn duplicate_id_bad_duration_and_unknown_key_are_refused_with_line() {
        let dup = BUILT_IN.replacen("id = \"c2\"", "id = \"c1\"", 1);
        let err = error_of(&dup);
        assert!(err.contains("compound id \"c1\" is used twice"), "{err}");
        let line = dup.find("[[compound]]\nid = \"c1\"\nname = \"第二小区\"").expect("second");
        assert!(err.contains(&format!("line {}:", line_of(&dup, line))), "{err}");

        let bad = BUILT_IN.replacen("respond = \"30m\"", "respond = \"soon\"", 1);
        assert!(error_of(&bad).contains("\"soon\" is not a duration"));

        let unknown =
            BUILT_IN.replacen("grid = \"第一网格\"", "grid = \"第一网格\"\ncolour = 1", 1);
        assert!(error_of(&unknown).contains("unknown field `colour`"));

        let swapped = BUILT_IN.replacen(
            "respond = \"30m\", resolve = \"1d\"",
            "respond = \"2d\", resolve = \"1d\"",
            1,
        );
        assert!(error_of(&swapped).contains("respond must not be longer than resolve"));

        assert!(
            error_of("name = \"x\"\nstreet_office = \"y\"\n").contains("at least one compound")
        );
    }

    /// Two communities of the built-in kind, `a` and `b`, with their compounds renamed apart.
    fn two(b_compound: &str) -> String {
        let one = |id: &str, prefix: &str| {
            let mut text = BUILT_IN.replace(
                "[[compound]]\nid = \"c",
                &format!("[[community.compound]]\nid = \"{prefix}"),
            );
            text = text.replace("[[category]]", "[[community.category]]");
            for table in ["escalation", "pauses", "recurring", "points", "goals", "quick_replies"] {
                text = text.replace(&format!("[{table}]"), &format!("[community.{table}]"));
            }
            format!("[[community]]\nid = \"{id}\"\n{text}")
        };
        let b = one("b", "b").replacen("id = \"b1\"", &format!("id = \"{b_compound}\""), 1);
        format!("{}\n{b}", one("a", "a"))
    }

    #[test]
    fn several_communities_each_with_an_id_and_compounds_of_their_own() {
        let parsed = parse(&two("b1"), "test.toml").expect("two communities");
        let ids: Vec<&str> = parsed.iter().map(|c| c.id.0.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(parsed[1].compounds[0].id.0, "b1");
        assert_eq!(parsed[0].categories.len(), parsed[1].categories.len());

        // b takes a's first compound: refused at that compound's line.
        let text = two("a1");
        let err = error_of(&text);
        assert!(err.contains("compound id \"a1\" already belongs to community \"a\""), "{err}");
        let second = text.match_indices("id = \"a1\"").nth(1).expect("b's a1").0;
        assert!(
            err.starts_with(&format!("test.toml, line {}:", line_of(&text, second) - 1)),
            "{err}"
        );

        let same = two("b1").replacen("id = \"b\"", "id = \"a\"", 1);
        assert!(error_of(&same).contains("community id \"a\" is used twice"));
        let unnamed = two("b1").replacen("id = \"b\"\n", "", 1);
        assert!(error_of(&unnamed).contains("each [[community]] needs an id"));
        let mixed = format!("name = \"x\"\n{}", two("b1"));
        assert!(error_of(&mixed).contains("nothing else goes at the top"));
    }
}

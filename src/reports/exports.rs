//! Per-partner exports (reports.md "Per-partner exports and who may read them"): one folder per
//! accepted partner with its own rows only, and `access.csv` saying which of its users may
//! open which file. A partner id is data, never a path: the folder name percent-encodes every
//! byte outside `[A-Za-z0-9._~-]`, so `../x` becomes `..%2Fx` and cannot leave the folder.
//!
//! A folder holds the partner's file of each exported report (declared with the report, in
//! [`REPORTS`]) and the files made from the partner itself, declared in [`PARTNER_FILES`].

use std::collections::HashMap;
use std::ops::Range;

use super::tables::{Export, REPORTS, Report};
use super::{Table, Values, csv_out};
use crate::feeds::tables::{Role, User};
use crate::publish::{FileParts, Folder};

/// The reports each partner gets in its folder, in the order of [`REPORTS`].
pub(crate) fn exported() -> impl Iterator<Item = &'static Report> {
    REPORTS.iter().copied().filter(|r| r.export != Export::No)
}

/// The longest percent-encoded id a folder name holds whole. File systems take names of up to
/// 255 bytes; with `partner_id=` this leaves room to spare.
const MAX_ENCODED_ID: usize = 200;

/// Of a longer id, the most of its encoding kept before the hash, in whole characters.
const LONG_ID_PREFIX: usize = 180;

/// Appends `s` percent-encoded: every byte outside `[A-Za-z0-9._~-]` as `%XX`.
fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"._~-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Folder name of a partner: `partner_id=` and the percent-encoded id. An id whose encoding is
/// longer than [`MAX_ENCODED_ID`] bytes (a 70-character id in a script of 3-byte characters)
/// would not fit a file name: its folder is named by the start of its encoding, `~` and 32 hex
/// digits of the SHA-256 of the whole id. Such a name is always longer than any whole encoding
/// kept, so the two kinds cannot collide; `access.csv` inside and the manifest's
/// `export_folders` name the full id.
pub(crate) fn folder_name(partner_id: &str) -> String {
    let mut encoded = String::with_capacity(partner_id.len());
    encode(partner_id, &mut encoded);
    if encoded.len() <= MAX_ENCODED_ID {
        return format!("partner_id={encoded}");
    }
    let mut start = String::new();
    for c in partner_id.chars() {
        let mut one = String::new();
        encode(c.encode_utf8(&mut [0; 4]), &mut one);
        if start.len() + one.len() > LONG_ID_PREFIX {
            break;
        }
        start.push_str(&one);
    }
    let hash = crate::digest::sha256_hex(partner_id.as_bytes());
    format!("partner_id={start}~{}", &hash[..32])
}

/// Whether a partner's folder is named by a hash rather than its whole id (see [`folder_name`]).
pub(crate) fn is_hashed(folder: &str) -> bool {
    folder.len() > "partner_id=".len() + MAX_ENCODED_ID
}

/// A file of every partner's folder made from the partner rather than cut from a report.
pub(crate) struct PartnerFile {
    pub(crate) name: &'static str,
    /// Who may open it (it is listed in `access.csv` accordingly).
    pub(crate) export: Export,
    /// Its row count and bytes.
    make: fn(&Owner) -> (u64, Vec<u8>),
}

/// The partner whose folder a [`PartnerFile`] is made for.
pub(crate) struct Owner<'p> {
    id: &'p str,
    users: &'p [&'p User],
    /// Every file of the folder and who may open it, sorted by name.
    files: &'p [(String, Export)],
}

/// The partner files of every folder, after the exported reports' files.
pub(crate) const PARTNER_FILES: [PartnerFile; 1] = [ACCESS];

/// `access.csv`: which of the partner's users may open which file of its folder.
const ACCESS: PartnerFile = PartnerFile {
    name: "access.csv",
    export: Export::AllUsers,
    make: |p| {
        let t = access(p.id, p.users, p.files);
        (t.rows() as u64, csv_out::to_csv(&t))
    },
};

/// Every file of a partner's folder (the exported reports' and [`PARTNER_FILES`]) and who may
/// open it, sorted by name.
fn folder_files() -> Vec<(String, Export)> {
    let mut files: Vec<(String, Export)> =
        exported().map(|r| (format!("{}.csv", r.name), r.export)).collect();
    files.extend(PARTNER_FILES.iter().map(|f| (f.name.to_string(), f.export)));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Whether a role may open a file of the folder exported as `export`.
fn may_open(role: Role, export: Export) -> bool {
    match export {
        Export::AllUsers => true,
        Export::AdminsOnly => role == Role::IncentiveAdmin,
        Export::No => false,
    }
}

/// The `access.csv` table of one partner: every file of the folder (`files`, sorted) that each
/// of its users may open.
fn access<'u>(partner_id: &'u str, users: &[&'u User], files: &'u [(String, Export)]) -> Table<'u> {
    let mut rows: Vec<(&str, Role, &str)> = Vec::new();
    for u in users {
        for (f, export) in files {
            if may_open(u.role, *export) {
                rows.push((&u.user_id, u.role, f));
            }
        }
    }
    rows.sort_by(|a, b| (a.0, a.2).cmp(&(b.0, b.2)));
    let text = |f: &dyn Fn(&(&str, Role, &str)) -> String| {
        Values::Text(rows.iter().map(|r| Some(f(r).into())).collect())
    };
    Table {
        name: "access",
        columns: vec![
            ("partner_id", text(&|_| partner_id.to_string())),
            ("user_id", text(&|r| r.0.to_string())),
            ("role", text(&|r| r.1.as_str().to_string())),
            ("file", text(&|r| r.2.to_string())),
        ],
    }
}

/// Makes partners' export folders: for the partner at a position of the sorted partner ids,
/// its file of each exported report, then its [`PARTNER_FILES`].
pub(crate) struct Exporter<'a> {
    run_date: chrono::NaiveDate,
    /// Every accepted partner id, sorted: a partner is named by its position in it.
    partner_ids: Vec<&'a str>,
    /// The exported reports' names ([`exported`] order) and CSV headers.
    reports: Vec<(&'static str, bytes::Bytes)>,
    users_of: HashMap<&'a str, Vec<&'a User>>,
    /// See [`folder_files`].
    files: Vec<(String, Export)>,
}

impl<'a> Exporter<'a> {
    pub(crate) fn new(
        run_date: chrono::NaiveDate,
        partner_ids: Vec<&'a str>,
        reports: Vec<(&'static str, Vec<u8>)>,
        users: &'a [User],
    ) -> Self {
        let mut users_of: HashMap<&str, Vec<&User>> = HashMap::new();
        for u in users {
            users_of.entry(&u.partner_id).or_default().push(u);
        }
        let reports = reports.into_iter().map(|(name, header)| (name, header.into())).collect();
        Exporter { run_date, partner_ids, reports, users_of, files: folder_files() }
    }

    /// Every accepted partner id, sorted.
    pub(crate) fn partner_ids(&self) -> &[&'a str] {
        &self.partner_ids
    }

    /// Report `k`'s CSV header.
    pub(crate) fn header(&self, k: usize) -> &bytes::Bytes {
        &self.reports[k].1
    }

    /// The folder of the partner at position `i`, where `file_of(k)` is its file of report `k`
    /// (header included) and that file's row count.
    pub(crate) fn folder(&self, i: usize, file_of: impl Fn(usize) -> (u64, FileParts)) -> Folder {
        let id = self.partner_ids[i];
        let path = format!("exports/run_date={}/{}", self.run_date, folder_name(id));
        let mut files: Vec<(String, u64, FileParts)> = self
            .reports
            .iter()
            .enumerate()
            .map(|(k, (report, _))| {
                let (rows, bytes) = file_of(k);
                (format!("{path}/{report}.csv"), rows, bytes)
            })
            .collect();
        let users = self.users_of.get(id).map(Vec::as_slice).unwrap_or_default();
        let owner = Owner { id, users, files: &self.files };
        for f in &PARTNER_FILES {
            let (rows, bytes) = (f.make)(&owner);
            files.push((format!("{path}/{}", f.name), rows, vec![bytes.into()]));
        }
        Folder { path, files }
    }

    /// The folders of the partners at `positions` (sorted), cut from what a run of them needs:
    /// the partners go [`RUN_PARTNERS`] at a time, in order; for each report `read_run` gets
    /// what a run (first to last position) needs, told the next run too so it can ask for it
    /// ahead, and `file_of` gives the file of report `k` of the partner at a position. Each
    /// run's folders, made in parallel, go to `sink`.
    pub(crate) fn export<R: Sync, E: Send>(
        &self,
        positions: &[usize],
        mut read_run: impl FnMut(usize, Range<usize>, Option<Range<usize>>) -> Result<R, E>,
        file_of: impl Fn(&R, usize, usize) -> (u64, Vec<u8>) + Sync,
        mut sink: impl FnMut(Vec<Folder>) -> Result<(), E>,
    ) -> Result<(), E> {
        use rayon::prelude::*;
        let runs: Vec<&[usize]> = positions.chunks(RUN_PARTNERS).collect();
        let span = |run: &[usize]| run[0]..run[run.len() - 1] + 1;
        for (n, run) in runs.iter().enumerate() {
            let read: Vec<R> = (0..self.reports.len())
                .map(|k| read_run(k, span(run), runs.get(n + 1).map(|r| span(r))))
                .collect::<Result<_, E>>()?;
            let file = |k, i| {
                let (rows, bytes) = file_of(&read[k], k, i);
                (rows, vec![bytes.into()])
            };
            sink(run.par_iter().map(|&i| self.folder(i, |k| file(k, i))).collect())?;
        }
        Ok(())
    }
}

/// Partners whose export folders are cut from a read-back report at a time.
const RUN_PARTNERS: usize = 512;

/// A partner's export of `table` (its rows already selected): the row count and the CSV, for
/// tests (a run cuts exports from the report's staged CSV, `reports::writer::Run`).
#[cfg(test)]
pub(crate) fn csv_file(table: &Table) -> (u64, Vec<u8>) {
    (table.rows() as u64, csv_out::to_csv(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_too_long_for_a_file_name_get_a_readable_start_and_a_hash() {
        let short = "a".repeat(MAX_ENCODED_ID);
        assert_eq!(folder_name(&short), format!("partner_id={short}"), "a whole encoding that fits is kept");
        for id in [
            "P".repeat(300),
            "P".repeat(1000),
            "日本".repeat(40),
            format!("{}{}", "x".repeat(179), "é".repeat(9)),
        ] {
            let name = folder_name(&id);
            assert!(name.len() <= 255, "{} bytes", name.len());
            assert!(is_hashed(&name) && !is_hashed(&folder_name(&short)));
            assert!(!name[11..].contains('/') && !name.ends_with('%'));
            // The start is readable: it decodes to the id's first characters.
            let start = name[11..].split('~').next().unwrap();
            assert!(id.starts_with(&crate::store::percent_decode(start)), "{name}");
        }
        let (a, b) = (format!("{}A", "P".repeat(300)), format!("{}B", "P".repeat(300)));
        assert_ne!(folder_name(&a), folder_name(&b), "ids that share a long start stay apart");
        assert_eq!(folder_name(&a), folder_name(&a.clone()), "deterministic");
    }

    #[test]
    fn ids_are_encoded_so_they_cannot_escape_or_collide() {
        assert_eq!(folder_name("P-1_a.b~"), "partner_id=P-1_a.b~");
        assert_eq!(folder_name("../x"), "partner_id=..%2Fx");
        assert_eq!(folder_name("a/b"), "partner_id=a%2Fb");
        assert_eq!(folder_name("a%2Fb"), "partner_id=a%252Fb", "an id that looks encoded stays distinct");
        assert_eq!(folder_name("é"), "partner_id=%C3%A9");
        assert_eq!(folder_name("=1+1"), "partner_id=%3D1%2B1");
    }

    #[test]
    fn admins_see_everything_users_all_but_payouts() {
        let users = [
            User { user_id: "b@x".into(), partner_id: "P".into(), role: Role::IncentiveUser },
            User { user_id: "a@x".into(), partner_id: "P".into(), role: Role::IncentiveAdmin },
        ];
        let refs: Vec<&User> = users.iter().collect();
        let files = folder_files();
        let text = String::from_utf8(csv_out::to_csv(&access("P", &refs, &files))).unwrap();
        assert_eq!(
            text,
            "partner_id,user_id,role,file\n\
             P,a@x,incentive_admin,access.csv\nP,a@x,incentive_admin,dashboard.csv\n\
             P,a@x,incentive_admin,earnings.csv\nP,a@x,incentive_admin,payouts.csv\n\
             P,a@x,incentive_admin,unearned.csv\n\
             P,b@x,incentive_user,access.csv\nP,b@x,incentive_user,dashboard.csv\n\
             P,b@x,incentive_user,earnings.csv\nP,b@x,incentive_user,unearned.csv\n"
        );
        assert_eq!(
            String::from_utf8(csv_out::to_csv(&access("P", &[], &files))).unwrap(),
            "partner_id,user_id,role,file\n"
        );
    }
}

#[cfg(test)]
mod hostile_ids {
    //! Generated partner ids full of path separators, dots, percent signs, unicode and formula
    //! characters: every folder decodes back to exactly one id, and holds only that id's rows.
    use super::*;
    use proptest::prelude::*;

    fn decode(name: &str) -> String {
        crate::store::percent_decode(name.strip_prefix("partner_id=").expect("prefix"))
    }

    fn id() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "/", "\\", ".", "..", "%", "%2F", "=", "+", "-", "@", " ", "é", "日本", "a", "B", "7", "~",
                "_", "\t",
            ]),
            1..6,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn folders_are_one_per_id_and_hold_only_its_rows(ids in prop::collection::btree_set(id(), 1..8), owners in prop::collection::vec(0usize..8, 0..30)) {
            let ids: Vec<String> = ids.into_iter().collect();
            let rows: Vec<usize> = owners.into_iter().map(|o| o % ids.len()).collect();
            let table = |name: &'static str| Table {
                name,
                columns: vec![
                    ("partner_id", Values::Text(rows.iter().map(|&o| Some(ids[o].as_str().into())).collect())),
                    ("n", Values::Int((0..rows.len() as i64).map(Some).collect())),
                ],
            };
            let reports: Vec<Table> = exported().map(|r| table(r.name)).collect();
            let refs: Vec<&Table> = reports.iter().collect();
            let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut files = Vec::new();
            let date = chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
            // Row indexes of each partner in each report, as the report's own column says.
            let index: Vec<HashMap<&str, Vec<usize>>> = refs
                .iter()
                .map(|report| {
                    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
                    for (i, id) in report.text_column("partner_id").iter().enumerate() {
                        index.entry(id.as_deref().unwrap_or_default()).or_default().push(i);
                    }
                    index
                })
                .collect();
            let file_of = |_: &(), k: usize, i: usize| {
                csv_file(&refs[k].select(index[k].get(id_refs[i]).map(Vec::as_slice).unwrap_or_default()))
            };
            let exporter = Exporter::new(date, id_refs.clone(), exported().map(|r| (r.name, Vec::new())).collect(), &[]);
            let positions: Vec<usize> = (0..ids.len()).collect();
            exporter
                .export(&positions, |_, _, _| Ok(()), file_of, |folders| {
                    files.extend(folders.into_iter().flat_map(|f| f.files));
                    Ok::<(), ()>(())
                })
                .unwrap();
            prop_assert_eq!(files.len(), ids.len() * 5, "five files per partner");
            let mut folders = std::collections::BTreeSet::new();
            for (path, n, bytes) in &files {
                let parts: Vec<&str> = path.split('/').collect();
                prop_assert_eq!(parts.len(), 4, "{}", path);
                prop_assert_eq!(parts[0], "exports");
                prop_assert!(parts[2] != "." && parts[2] != "..");
                let owner = decode(parts[2]);
                folders.insert(parts[2].to_string());
                let bytes = bytes.concat();
                let mut r = csv::Reader::from_reader(bytes.as_slice());
                let mut count = 0;
                for rec in r.records() {
                    let cell = rec.unwrap()[0].to_string();
                    let cell = match cell.strip_prefix('\'') {
                        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_string(),
                        _ => cell,
                    };
                    prop_assert_eq!(&cell, &owner, "{} holds a row of another partner", path);
                    count += 1;
                }
                prop_assert_eq!(count as u64, *n);
            }
            prop_assert_eq!(folders.len(), ids.len(), "one folder per id, no collisions");
        }
    }
}

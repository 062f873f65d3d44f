//! TEMPORARY placeholder until the generator lands (being written).
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub seed: u64,
    pub subscribers: usize,
    pub events: usize,
    pub start: crate::util::Millis,
    pub days: u32,
    pub offset_secs: i32,
}
impl Default for GenOptions {
    fn default() -> Self {
        GenOptions { seed: 7, subscribers: 10_000, events: 200_000, start: 0, days: 1, offset_secs: 8 * 3600 }
    }
}
pub struct RefFiles {
    pub subscribers: Vec<String>,
    pub cells: Vec<String>,
    pub calendar: Vec<String>,
    pub stores: Vec<String>,
}
pub fn reference(_opts: &GenOptions) -> RefFiles {
    RefFiles { subscribers: vec![], cells: vec![], calendar: vec![], stores: vec![] }
}
pub fn events(_opts: &GenOptions) -> impl Iterator<Item = String> {
    std::iter::empty()
}
pub fn write_dir(_opts: &GenOptions, _dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

//! Words for codes: an SMS in Chinese reads as Chinese, so a value that is a code (`data`,
//! `long_distance`, a tier, an IVR menu node) is written as its word inside Chinese text
//! ("因网络故障影响了您的数据流量业务使用", not "...您的data业务使用").
//!
//! The engine knows a word for every value of its own enumerations ([`BUILT_IN`], the one
//! table). A pack's `dictionary:` items give words to the codes its data brings (CRM
//! attributes, IVR menu nodes) and may replace a built-in word. Which templates use words and
//! how is [`super::template`]'s business; this module only answers "what is this code's word".
//!
//! The dictionary is fixed when the pack compiles and shared by its templates: a template
//! resolves an enumerated value's word to a table by symbol then, and looks strings up in a
//! map that borrows the string (no allocation per lookup).

use super::expr::SymTy;
use std::collections::HashMap;

/// The engine's words for its enumerated values, per enumeration, in the order of its `NAMES`
/// (a test holds every value to a word). The words are an operator's SMS words.
pub const BUILT_IN: &[(SymTy, &[(&str, &str)])] = &[
    (
        SymTy::Kind,
        &[
            ("usage", "通信"),
            ("topup", "充值"),
            ("ivr", "10086热线"),
            ("location", "位置"),
            ("crm", "业务办理"),
            ("profile", "资料变更"),
            ("outcome", "联系结果"),
            ("reply", "短信回复"),
        ],
    ),
    (SymTy::Service, &[("voice", "语音"), ("sms", "短信"), ("mms", "彩信"), ("data", "数据流量")]),
    (SymTy::Direction, &[("mo", "主叫"), ("mt", "被叫")]),
    (
        SymTy::Scope,
        &[
            ("local", "本地"),
            ("long_distance", "长途"),
            ("international", "国际长途"),
            ("roaming_domestic", "国内漫游"),
            ("roaming_international", "国际漫游"),
        ],
    ),
    (
        SymTy::TopupChannel,
        &[
            ("card", "充值卡"),
            ("online", "网上"),
            ("store", "营业厅"),
            ("bank", "银行"),
            ("ussd", "手机菜单"),
            ("agent", "代理商"),
        ],
    ),
    (SymTy::IvrStep, &[("enter", "进入热线"), ("menu", "菜单"), ("agent", "人工服务"), ("exit", "挂机")]),
    (SymTy::LocTrigger, &[("attach", "开机"), ("handover", "切换"), ("periodic", "位置更新"), ("detach", "关机")]),
    (SymTy::Brand, &[("gotone", "全球通"), ("mzone", "动感地带"), ("easyown", "神州行")]),
    (SymTy::Tier, &[("high", "高价值"), ("valuable", "中价值"), ("sub", "低价值"), ("negative", "负价值")]),
    (SymTy::Status, &[("active", "正常"), ("suspended", "停机"), ("pre_cancel", "预销户"), ("cancelled", "已销户")]),
    (SymTy::Channel, &[("sms", "短信"), ("call", "电话"), ("ivr", "10086热线"), ("order", "业务办理")]),
    (
        SymTy::OutcomeStatus,
        &[
            ("delivered", "已送达"),
            ("failed", "发送失败"),
            ("answered", "已接听"),
            ("busy", "占线"),
            ("no_answer", "无人接听"),
            ("refused", "拒接"),
            ("expired", "已过期"),
            ("accepted", "已受理"),
            ("rejected", "未受理"),
        ],
    ),
];

/// The built-in words of one enumeration, in the order of its `NAMES`.
pub fn built_in(ty: SymTy) -> &'static [(&'static str, &'static str)] {
    BUILT_IN.iter().find(|(t, _)| *t == ty).map_or(&[], |(_, w)| w)
}

/// Whether `text` has a Chinese character (a CJK ideograph) in it: such a template writes
/// codes as words.
pub fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(c as u32,
            0x4E00..=0x9FFF      // CJK Unified Ideographs
            | 0x3400..=0x4DBF    // Extension A
            | 0xF900..=0xFAFF    // Compatibility Ideographs
            | 0x20000..=0x3134F) // Extensions B to G
    })
}

/// A pack's words: its `dictionary:` items over the built-in ones.
#[derive(Debug)]
pub struct Dictionary {
    /// The pack's own entries (code -> word): they replace a built-in word in every
    /// enumeration that has the code.
    pack: HashMap<Box<str>, Box<str>>,
    /// Every code with a word, for strings: the pack's, then the built-in ones. A code two
    /// enumerations share reads as the first one's word (`agent`: the top-up channel's).
    all: HashMap<Box<str>, Box<str>>,
}

impl Default for Dictionary {
    /// The built-in words alone.
    fn default() -> Self {
        Dictionary::new(HashMap::new())
    }
}

impl Dictionary {
    /// The built-in words with `pack`'s entries over them.
    pub fn new(pack: HashMap<Box<str>, Box<str>>) -> Self {
        let mut all = pack.clone();
        for (code, word) in BUILT_IN.iter().flat_map(|(_, w)| w.iter()) {
            all.entry((*code).into()).or_insert_with(|| (*word).into());
        }
        Dictionary { pack, all }
    }

    /// The word for a code, if it has one. Digits alone are a number as the subscriber or the
    /// system wrote it (a score `2`, an order number), never a code: they have no word.
    pub fn word(&self, code: &str) -> Option<&str> {
        if code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.all.get(code).map(|w| &**w)
    }

    /// An enumeration's words by symbol (what a template indexes with an enumerated value).
    pub fn symbols(&self, ty: SymTy) -> Box<[Box<str>]> {
        let words = built_in(ty);
        ty.names()
            .iter()
            .enumerate()
            .map(|(i, code)| {
                self.pack.get(*code).map_or_else(|| words.get(i).map_or(*code, |w| w.1).into(), |w| w.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SymTy; 12] = [
        SymTy::Kind,
        SymTy::Service,
        SymTy::Direction,
        SymTy::Scope,
        SymTy::TopupChannel,
        SymTy::IvrStep,
        SymTy::LocTrigger,
        SymTy::Brand,
        SymTy::Tier,
        SymTy::Status,
        SymTy::Channel,
        SymTy::OutcomeStatus,
    ];

    #[test]
    fn every_enumerated_value_has_a_chinese_word_in_the_table() {
        assert_eq!(BUILT_IN.len(), ALL.len(), "one entry per enumeration");
        for ty in ALL {
            let codes: Vec<&str> = built_in(ty).iter().map(|w| w.0).collect();
            assert_eq!(codes, ty.names(), "{ty:?}: the table follows NAMES");
            for (code, word) in built_in(ty) {
                assert!(has_chinese(word), "{ty:?} {code}: {word}");
            }
        }
    }

    #[test]
    fn a_pack_entry_replaces_the_built_in_word_everywhere() {
        let d = Dictionary::new([("sms".into(), "短消息".into()), ("gold".into(), "金卡".into())].into());
        assert_eq!(d.word("sms"), Some("短消息"));
        assert_eq!(d.word("gold"), Some("金卡"));
        assert_eq!(d.word("data"), Some("数据流量"));
        assert_eq!(d.word("nothing"), None);
        assert_eq!(&*d.symbols(SymTy::Service)[1], "短消息");
        assert_eq!(&*d.symbols(SymTy::Channel)[0], "短消息");
        assert_eq!(&*Dictionary::default().symbols(SymTy::Channel)[0], "短信");
        // A code two enumerations share: by symbol each has its own word.
        assert_eq!(&*d.symbols(SymTy::IvrStep)[2], "人工服务");
        assert_eq!(d.word("agent"), Some("代理商"));
    }

    #[test]
    fn digits_alone_are_a_number_never_a_code() {
        let d = Dictionary::new([("2".into(), "流量".into()), ("2-4".into(), "流量提醒".into())].into());
        assert_eq!((d.word("2"), d.word("12593")), (None, None), "a score, an order number");
        assert_eq!(d.word("2-4"), Some("流量提醒"), "a menu path is a code");
    }

    #[test]
    fn chinese_is_any_cjk_ideograph() {
        assert!(has_chinese("余额{x}元"));
        assert!(has_chinese("【中国移动】"));
        assert!(!has_chinese("store_care_{x}"));
        assert!(!has_chinese("！，。【】")); // punctuation alone is not Chinese text
        assert!(has_chinese("\u{20000}"));
    }
}

//! What an event line says, decided before it is written: the stream schedules these records,
//! `render` turns them into JSON lines. They are small `Copy` values (names are indices
//! into the tables below) because thousands wait in the stream's heap at a time.
//!
//! The constructors name the shapes traffic takes (a local call, a data session, an IVR step), so
//! that the background and the episodes read as what happens rather than as field lists.

pub(super) const SERVICE_KINDS: [&str; 4] = ["voice", "sms", "mms", "data"];
pub(super) const VOICE: u8 = 0;
pub(super) const SMS: u8 = 1;
pub(super) const MMS: u8 = 2;
pub(super) const DATA: u8 = 3;
pub(super) const DIRS: [&str; 2] = ["mo", "mt"];
pub(super) const MO: u8 = 0;
pub(super) const MT: u8 = 1;
pub(super) const SCOPES: [&str; 5] =
    ["local", "long_distance", "international", "roaming_domestic", "roaming_international"];
pub(super) const LOCAL: u8 = 0;
pub(super) const LONG_DISTANCE: u8 = 1;
pub(super) const INTERNATIONAL: u8 = 2;
pub(super) const ROAM_DOM: u8 = 3;
pub(super) const ROAM_INTL: u8 = 4;
pub(super) const TRIGGERS: [&str; 4] = ["attach", "handover", "periodic", "detach"];
pub(super) const ATTACH: u8 = 0;
pub(super) const HANDOVER: u8 = 1;
pub(super) const PERIODIC: u8 = 2;
pub(super) const TOPUP_CHANNELS: [&str; 6] = ["card", "online", "store", "bank", "ussd", "agent"];
pub(super) const CH_STORE: u8 = 2;
pub(super) const IVR_STEPS: [&str; 4] = ["enter", "menu", "agent", "exit"];
const ENTER: u8 = 0;
const MENU: u8 = 1;
const AGENT: u8 = 2;
const EXIT: u8 = 3;
pub(super) const STORE_TXNS: [&str; 5] = ["open_package", "topup", "sim_replace", "handset", "inquiry"];
pub(super) const PAYMENTS: [&str; 5] = ["cash", "card", "wechat", "alipay", "none"];
pub(super) const CASH: u8 = 0;
/// Results the call centre reports for a call-back.
pub(super) const CALL_RESULTS: [&str; 3] = ["answered", "no_answer", "busy"];
/// What a CRM order buys, and its price in fen.
pub(super) const ORDER_ITEMS: [(&str, i32); 5] =
    [("data_pack_10g", 3000), ("handset", 299_900), ("broadband", 12_000), ("video_vip", 1500), ("music_club", 1000)];
pub(super) const COMPLAINT_TOPICS: [&str; 5] = ["billing", "network", "service", "data", "roaming"];
pub(super) const FAILURE_CODES: [&str; 3] = ["PDP_REJECT", "AUTH_FAIL", "APN_ERROR"];
/// Why the billing system credits an account (refunds twice as often as the rest).
pub(super) const CREDIT_REASONS: [&str; 5] = ["话费返还", "话费返还", "套餐优惠", "故障补偿", "积分兑换"];
pub(super) const DISCONNECT_REASONS: [&str; 5] = ["relocation", "price", "coverage", "switching", "other"];
/// What the retention agent writes as the reason a subscriber who refused gave (by
/// [`DISCONNECT_REASONS`] index), and the results of retention calls.
pub(super) const REFUSAL_DETAILS: [&str; 5] = ["搬迁外地", "资费太贵", "信号不好", "转网", "其他原因"];
pub(super) const RETENTION_RESULTS: [&str; 3] = ["answered", "no_answer", "refused"];
pub(super) const DISCONNECT_CHANNELS: [&str; 3] = ["store", "hotline", "online"];

/// A usage record (CDR): a call, messages or a data session.
#[derive(Clone, Copy)]
pub(super) struct Usage {
    pub(super) service: u8,
    pub(super) dir: u8,
    pub(super) scope: u8,
    pub(super) peer: u64,
    pub(super) duration: u32,
    pub(super) volume: u32,
    pub(super) count: u8,
    pub(super) charge: u32,
    pub(super) cell: u32,
    pub(super) via: bool,
    /// Balance after this charge, overriding the running one: deductions the stream never shows
    /// (monthly rental, other lines of the account) are how a balance gets low between records.
    pub(super) force_after: Option<i32>,
}

impl Usage {
    /// What the constructors start from: a free local outgoing session of nothing.
    const BLANK: Usage = Usage {
        service: DATA,
        dir: MO,
        scope: LOCAL,
        peer: 0,
        duration: 0,
        volume: 0,
        count: 0,
        charge: 0,
        cell: 0,
        via: false,
        force_after: None,
    };

    /// A local outgoing call, free until [`Usage::charged`].
    #[inline]
    pub(super) fn call(peer: u64, duration: u32, cell: u32) -> Usage {
        Usage { service: VOICE, peer, duration, cell, ..Usage::BLANK }
    }

    /// `count` local outgoing SMS (or one MMS), free until [`Usage::charged`].
    #[inline]
    pub(super) fn messages(service: u8, peer: u64, count: u8, cell: u32) -> Usage {
        Usage { service, peer, count, cell, ..Usage::BLANK }
    }

    /// A local data session of `volume` KB, free until [`Usage::charged`].
    #[inline]
    pub(super) fn data(volume: u32, cell: u32) -> Usage {
        Usage { volume, cell, ..Usage::BLANK }
    }

    #[inline]
    pub(super) fn charged(self, charge: u32) -> Usage {
        Usage { charge, ..self }
    }

    #[inline]
    pub(super) fn scope(self, scope: u8) -> Usage {
        Usage { scope, ..self }
    }

    #[inline]
    pub(super) fn dir(self, dir: u8) -> Usage {
        Usage { dir, ..self }
    }

    /// Dialled through the 12593 long-distance prefix.
    #[inline]
    pub(super) fn via_12593(self, via: bool) -> Usage {
        Usage { via, ..self }
    }

    /// Leaves the balance at `after` (see [`Usage::force_after`]).
    #[inline]
    pub(super) fn leaving(self, after: Option<i32>) -> Usage {
        Usage { force_after: after, ..self }
    }
}

/// A CRM system's event (`kind: crm`), with the attributes its `event` carries.
#[derive(Clone, Copy)]
pub(super) enum Crm {
    PointsChanged {
        points: i64,
        delta: i64,
        first: bool,
    },
    PaymentPosted {
        amount: i32,
    },
    /// A postpaid account's bill of the month before day `day` is unpaid past its due date (the
    /// 15th): the billing system's arrears notice, `amount` owed.
    BillOverdue {
        amount: i32,
        day: usize,
    },
    /// Order number `order`, for [`ORDER_ITEMS`]`[item]`.
    OrderPlaced {
        order: u64,
        item: u8,
    },
    /// Points expire at the end of the month of day `day` of the window.
    PointsExpiring {
        points: i64,
        day: usize,
    },
    StoreVisit {
        store: u8,
        txn: u8,
        payment: u8,
    },
    ComplaintClosed {
        complaint: u64,
        topic: u8,
    },
    /// The contract ends thirty days after day `day` of the window.
    ContractExpiring {
        day: usize,
    },
    ServiceFailure {
        code: u8,
        cell: u32,
    },
    TierChanged {
        from: u8,
        to: u8,
    },
    /// Credited by the billing system: refunds, promotions, compensation for outages.
    DiscountCredited {
        amount: i32,
        reason: u8,
    },
    DisconnectRequested {
        reason: u8,
        channel: u8,
    },
    /// The subscriber agreed to stay `months` months for a reward (won by a retention call).
    StayCommitment {
        months: u8,
    },
    /// CRM plans a repair cut-over in the area of `cell` the next night and tells the
    /// subscribers seen there.
    CutoverPlanned {
        cell: u32,
    },
}

/// One profile attribute a CRM update sets (`kind: profile`).
#[derive(Clone, Copy)]
pub(super) enum ProfileSet {
    /// The subscribed services, a mask over `SERVICES`.
    Services(u8),
    /// Do-not-disturb: 0 off, 1 all channels, 2 SMS only.
    Dnd(u8),
    Tier(u8),
    /// The preferences, a mask over `PREFS`.
    Prefs(u8),
    /// The number is cancelled (after a refused retention call).
    Cancelled,
    /// A disconnection request puts the number in `pre_cancel`.
    PreCancel,
    /// The stay commitment runs to this date.
    StayUntil(chrono::NaiveDate),
}

/// One event line, before it is rendered.
#[derive(Clone, Copy)]
pub(super) enum Ev {
    Loc {
        cell: u32,
        trigger: u8,
    },
    Usage(Usage),
    Topup {
        amount: u32,
        channel: u8,
        store: u8,
    },
    Ivr {
        session: u64,
        step: u8,
        node: [u8; 3],
        depth: u8,
    },
    Crm(Crm),
    Profile(ProfileSet),
    /// The call centre's result for the call-back of a closed complaint (an `outcome` event):
    /// the action id it reports on, and the result.
    CallResult {
        action: u64,
        status: u8,
    },
    /// The call centre's result for a retention call (the `retention_disconnect` journey's):
    /// [`RETENTION_RESULTS`] by index, and the reason given when refused.
    RetentionResult {
        action: u64,
        status: u8,
        reason: u8,
    },
    /// A subscriber's message back to 10086 (a `reply` event): [`REPLY_TEXTS`] by index.
    Reply {
        text: u8,
    },
}

/// What subscribers write back: survey scores, refusals in the shapes phones produce them
/// (full-width, lower case, with a thank-you), a `0000`, an offer's keyword, and chatter.
pub(super) const REPLY_TEXTS: [&str; 20] = [
    "1",
    "2",
    "3",
    "4",
    "5",
    "TD",
    "ｔｄ",
    "退订 谢谢",
    "R",
    "0000",
    "KT12593",
    "谢谢",
    "HY",
    "ktld",
    "BL",
    "LL",
    "xd",
    "XY",
    "KTBY",
    "TQ",
];
/// Indexes into [`REPLY_TEXTS`].
pub(super) const R_SCORE_1: u8 = 0;
pub(super) const R_REFUSALS: [u8; 4] = [5, 6, 7, 8];
pub(super) const R_ALL: u8 = 9;
pub(super) const R_KT12593: u8 = 10;
pub(super) const R_THANKS: u8 = 11;
pub(super) const R_HY: u8 = 12;
pub(super) const R_KTLD: u8 = 13;
/// The keywords the pack's other offers ask for (rules/replies.yaml): the retention offers',
/// the silence gift's, the package and contract expiry SMS', the roaming welcome's and the
/// weather alert's.
pub(super) const R_BL: u8 = 14;
pub(super) const R_LL: u8 = 15;
pub(super) const R_XD: u8 = 16;
pub(super) const R_XY: u8 = 17;
pub(super) const R_KTBY: u8 = 18;
pub(super) const R_TQ: u8 = 19;

impl Ev {
    /// A location update in `cell`.
    #[inline]
    pub(super) fn loc(cell: u32, trigger: u8) -> Ev {
        Ev::Loc { cell, trigger }
    }

    /// A top-up outside a store (`channel` is not `CH_STORE`).
    #[inline]
    pub(super) fn topup(amount: u32, channel: u8) -> Ev {
        Ev::Topup { amount, channel, store: 0 }
    }

    /// A top-up at the counter of store `store`.
    #[inline]
    pub(super) fn store_topup(amount: u32, store: u8) -> Ev {
        Ev::Topup { amount, channel: CH_STORE, store }
    }

    #[inline]
    pub(super) fn store_visit(store: u8, txn: u8, payment: u8) -> Ev {
        Ev::Crm(Crm::StoreVisit { store, txn, payment })
    }

    /// A caller reaches the hotline.
    #[inline]
    pub(super) fn ivr_enter(session: u64) -> Ev {
        Ev::Ivr { session, step: ENTER, node: [0; 3], depth: 0 }
    }

    /// A menu choice: the caller is at the first `depth` entries of `node`.
    #[inline]
    pub(super) fn ivr_menu(session: u64, node: [u8; 3], depth: u8) -> Ev {
        Ev::Ivr { session, step: MENU, node, depth }
    }

    /// Put through to an agent from the menu at `node`.
    #[inline]
    pub(super) fn ivr_agent(session: u64, node: [u8; 3], depth: u8) -> Ev {
        Ev::Ivr { session, step: AGENT, node, depth }
    }

    /// The caller hangs up.
    #[inline]
    pub(super) fn ivr_exit(session: u64) -> Ev {
        Ev::Ivr { session, step: EXIT, node: [0; 3], depth: 0 }
    }
}

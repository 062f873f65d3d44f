// The console's labels, each key once with its English and Chinese text. `t(key, vars)` looks a
// label up in the current language ({name} in a label is filled from vars); the language is the
// user's choice (kept in localStorage: a preference, not a secret) or else the browser's.
"use strict";

const LANGS = ["en", "zh"];
const LABELS = {
  "nav.campaigns": ["Campaigns", "营销活动"],
  "nav.rules": ["Rules", "规则"],
  "nav.changes": ["Changes", "变更"],
  "nav.audit": ["Audit log", "审计日志"],
  "nav.explain": ["Subscriber", "用户查询"],
  "logout": ["Log out", "退出"],
  "login.title": ["Log in to tidings", "登录 tidings"],
  "login.user": ["User name", "用户名"],
  "login.secret": ["Password or token", "密码或令牌"],
  "login.go": ["Log in", "登录"],
  "login.failed": ["Wrong user name, password or token.", "用户名、密码或令牌错误。"],
  "campaigns.title": ["Campaigns", "营销活动"],
  "campaigns.none": ["No campaigns in the rule pack.", "规则包中没有营销活动。"],
  "campaign": ["Campaign", "活动"],
  "owner": ["Owner", "负责人"],
  "start": ["Start", "开始"],
  "end": ["End", "结束"],
  "status": ["Status", "状态"],
  "budget": ["Budget", "预算"],
  "spent": ["Spent", "已用"],
  "journeys.title": ["Journeys in progress", "进行中的客户旅程"],
  "journeys.none": ["No journeys in the rule pack.", "规则包中没有客户旅程。"],
  "journey": ["Journey", "旅程"],
  "journeys.step": ["Step", "步骤"],
  "journeys.in_progress": ["In progress", "进行中"],
  "funnel.title": ["Funnel", "漏斗"],
  "funnel.none": ["No funnel data (this engine does not serve /v1/funnel yet).", "暂无漏斗数据（本引擎尚未提供 /v1/funnel）。"],
  "funnel.empty": ["No counts in these days.", "这些日期内没有计数。"],
  "funnel.from": ["From", "从"],
  "funnel.to": ["To", "到"],
  "funnel.show": ["Show", "查看"],
  "funnel.by_rule": ["By rule", "按规则"],
  "stage.triggered": ["triggered", "触发"],
  "stage.matched": ["matched", "命中"],
  "stage.suppressed": ["suppressed", "被抑制"],
  "stage.sent": ["sent", "发送"],
  "stage.delivered": ["delivered", "送达"],
  "stage.replied": ["replied", "回复"],
  "stage.answered": ["answered", "接听"],
  "stage.accepted": ["accepted", "办理"],
  "rules.title": ["Rule files", "规则文件"],
  "rules.live": ["Live version {v}", "当前版本 {v}"],
  "rules.open": ["Open a file to edit it.", "打开一个文件进行编辑。"],
  "rules.nodeploy": ["Rule editing needs governed deploys ([api.deploy]) on this engine.", "编辑规则需要本引擎启用受控发布（[api.deploy]）。"],
  "editor.checking": ["checking…", "检查中…"],
  "editor.ok": ["No errors", "没有错误"],
  "editor.errors": ["{n} error(s), {w} warning(s)", "{n} 个错误，{w} 个警告"],
  "editor.line": ["line {n}", "第 {n} 行"],
  "editor.other": ["In other files", "其他文件中"],
  "editor.try": ["Run tests and backtest", "运行测试和回测"],
  "editor.trying": ["Running the tests and the backtest…", "正在运行测试和回测…"],
  "editor.submit": ["Submit for approval", "提交审批"],
  "editor.comment": ["What and why (required)", "改了什么、为什么（必填）"],
  "editor.revert": ["Revert", "还原"],
  "editor.author_only": ["Only an author may check or submit changes.", "只有作者角色可以检查或提交变更。"],
  "checks.tests": ["Tests", "测试"],
  "checks.passed": ["passed", "通过"],
  "checks.failed": ["failed", "未通过"],
  "checks.cases": ["{p} passed, {f} failed", "{p} 个通过，{f} 个失败"],
  "checks.backtest": ["Backtest (recorded traffic, live → this)", "回测（录制流量，当前版本 → 本版本）"],
  "checks.skipped": ["skipped: {why}", "已跳过：{why}"],
  "checks.all": ["All checks", "全部检查"],
  "checks.reload": ["At deploy (live → this): what the running state keeps", "部署时（当前版本 → 本版本）：运行状态的延续"],
  "checks.carried": ["Everything carries over: no journey step, timer, derived attribute or window is dropped.", "全部延续：没有旅程步骤、定时器、派生属性或窗口被丢弃。"],
  "diff.rule": ["Rule", "规则"],
  "diff.old": ["Live sent", "当前发送"],
  "diff.new": ["New sent", "新版发送"],
  "diff.gained": ["Gained", "新增"],
  "diff.lost": ["Lost", "减少"],
  "changes.title": ["Changes", "变更"],
  "changes.none": ["No changes yet.", "还没有变更。"],
  "changes.live": ["Live now", "当前生效"],
  "change": ["Change", "变更"],
  "version": ["Version", "版本"],
  "author": ["Author", "作者"],
  "time": ["Time", "时间"],
  "comment": ["Comment", "说明"],
  "files": ["Files", "文件"],
  "approvals": ["Approvals", "审批"],
  "approve": ["Approve", "批准"],
  "reject": ["Reject", "驳回"],
  "deploy": ["Deploy", "发布"],
  "rollback": ["Roll back", "回滚"],
  "rollback.to": ["Roll back to", "回滚到"],
  "history": ["Live history", "上线历史"],
  "how": ["How", "方式"],
  "user": ["User", "用户"],
  "change.title": ["Change {n}", "变更 {n}"],
  "back": ["Back", "返回"],
  "status.checks_failed": ["checks failed", "检查未通过"],
  "status.pending": ["waiting for approval", "待审批"],
  "status.approved": ["approved", "已批准"],
  "status.rejected": ["rejected", "已驳回"],
  "status.deployed": ["deployed", "已发布"],
  "audit.title": ["Audit log", "审计日志"],
  "audit.step": ["Step", "步骤"],
  "audit.outcome": ["Outcome", "结果"],
  "audit.detail": ["Detail", "详情"],
  "explain.title": ["One subscriber's story", "单个用户的情况"],
  "explain.number": ["Phone number", "手机号"],
  "explain.go": ["Explain", "查询"],
  "explain.masked": ["Numbers are masked for every role.", "所有角色看到的号码都经过掩码处理。"],
  "done": ["Done", "完成"],
  "error": ["Error", "错误"],
};

let lang = localStorage.getItem("tidings.lang") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

/** The label `key` in the current language, {name} filled from `vars`. */
function t(key, vars) {
  const both = LABELS[key];
  const s = both ? both[Math.max(0, LANGS.indexOf(lang))] : key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? String(vars[k]) : ""));
}

/** Switches the language and relabels the static parts of the page (pages redraw themselves). */
function setLang(l) {
  lang = l;
  localStorage.setItem("tidings.lang", l);
  document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.getElementById("lang").textContent = l === "zh" ? "English" : "中文";
}

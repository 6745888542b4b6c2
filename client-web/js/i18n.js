// Chinese first, English on request; the choice is remembered per device.

const STRINGS = {
  zh: {
    app: "红帆", home: "首页", kiosk: "自助上报", board: "网格工作台", audit: "督办统计", login: "登录",
    logout: "退出", language: "English", online: "在线", offline: "离线", connecting: "连接中…",
    choose: "请选择要反映的事项", lookup: "查询办理进度", back: "返回", submit: "提交",
    building: "楼号", unit: "单元", room: "门牌号", description: "请简单说明情况",
    phone: "联系电话（可不填）", urgency: "是否紧急", normal: "一般", urgent: "紧急",
    your_ticket: "您的受理号", keep_ticket: "请记下这个号码，可随时查询进度", done: "完成",
    saved_offline: "网络暂时断开，您的上报已保存，恢复后会自动提交，请稍候。",
    sending: "正在提交…", ticket_prompt: "请输入受理号", find: "查询", not_found: "没有找到这个受理号",
    status_reported: "已上报，等待网格员接单", status_claimed: "已接单", status_handed_over: "已代办，正在街道办理",
    status_resolved: "已办结", status_cancelled: "已撤销", by: "接单人", need_description: "请填写情况说明",
    pair_title: "自助机配对", pair_help: "请工作人员输入本驿站自助机配对码", credential: "配对码", pair: "配对",
    on_duty: "在岗", off_duty: "离岗", duty: "值班状态", no_open: "目前没有待办事项",
    claim: "接单", note: "备注", hand_over: "代办", return: "收回", resolve: "办结", reopen: "重新打开",
    cancel: "撤销", confirm: "确定", close: "取消", waited: "已等待", to_resolve: "距办结时限",
    show_phone: "显示电话", private_case: "此类事项涉及个人隐私，内容仅接单人和书记可见", reported_at: "上报时间", holder: "负责人", escalated: "无人在岗，已上报书记",
    note_prompt: "备注内容", hand_over_prompt: "代办说明（交街道办理的事项）", return_prompt: "收回说明",
    resolve_prompt: "办结结果", reopen_prompt: "重新打开的原因", cancel_prompt: "撤销原因（重复或误报）",
    new_report: "新上报", login_title: "工作人员登录", username: "账号", password: "密码",
    wrong: "账号或密码不对", open_count: "待办", late: "已超时", near: "即将超时",
    kiosk_desc: "居民在红帆驿站上报问题", board_desc: "网格员实时接单办理", audit_desc: "书记、主任查看响应时效",
    tagline: "第一时间了解、第一时间帮助解决",
    today: "今天", this_week: "本周", this_month: "本月", from: "从", to: "到", compound: "小区", worker: "网格员",
    category: "类别", all: "全部", export_incidents: "导出事项 CSV", export_figures: "导出统计 CSV", export_json: "导出 JSON",
    chart_response: "首次响应用时（占时限比例）", chart_daily: "每日上报（柱）与时限内响应（线）", reports: "上报数",
    response_rate: "响应率", resolution_rate: "解决率", resolved_in_target: "时限内办结率", satisfaction: "满意率",
    breaches: "超时", unanswered: "未响应", response_time: "响应用时", resolution_time: "办结用时", median: "中位",
    max: "最长", by_worker: "按网格员", by_compound: "按小区", by_category: "按类别", responded_in_target: "时限内响应",
    resolved: "已办结", open: "未办结", target: "时限", ticket: "受理号", status: "状态", deadline: "时限",
    supervisors_only: "此页面仅供书记、居委会主任使用。", satisfied: "满意", basically_satisfied: "基本满意", dissatisfied: "不满意",
    change_reported: "上报", change_claimed: "接单", change_noted: "备注", change_handed_over: "代办", change_returned: "收回",
    change_resolved: "办结", change_reopened: "重新打开", change_cancelled: "撤销", change_escalated: "无人在岗，上报书记",
    change_breached: "超时", change_rated: "评价", rate_prompt: "您对办理结果满意吗？", thanks: "谢谢您的评价",
  },
  en: {
    app: "Hongfan", home: "Home", kiosk: "Report", board: "Live board", audit: "Audit", login: "Log in",
    logout: "Log out", language: "中文", online: "Online", offline: "Offline", connecting: "Connecting…",
    choose: "What would you like to report?", lookup: "Check a ticket", back: "Back", submit: "Submit",
    building: "Building", unit: "Unit", room: "Room", description: "What is the problem?",
    phone: "Phone (optional)", urgency: "Urgent?", normal: "Normal", urgent: "Urgent",
    your_ticket: "Your ticket number", keep_ticket: "Keep this number to check progress any time", done: "Done",
    saved_offline: "The network is down. Your report is saved and will be sent as soon as it is back.",
    sending: "Sending…", ticket_prompt: "Enter your ticket number", find: "Check", not_found: "No such ticket",
    status_reported: "Reported, waiting for a worker", status_claimed: "Claimed", status_handed_over: "With the street office",
    status_resolved: "Resolved", status_cancelled: "Cancelled", by: "Taken by", need_description: "Please describe the problem",
    pair_title: "Pair this kiosk", pair_help: "Staff: enter this station's kiosk credential", credential: "Credential", pair: "Pair",
    on_duty: "On duty", off_duty: "Off duty", duty: "Duty", no_open: "Nothing open right now",
    claim: "Claim", note: "Note", hand_over: "Hand over", return: "Take back", resolve: "Resolve", reopen: "Reopen",
    cancel: "Cancel report", confirm: "OK", close: "Close", waited: "Waiting", to_resolve: "Due in",
    show_phone: "Show phone", private_case: "Private case: details only for its holder and supervisors", reported_at: "Reported", holder: "Holder", escalated: "Nobody on duty: escalated",
    note_prompt: "Note", hand_over_prompt: "What goes to the street office", return_prompt: "Back from the street office",
    resolve_prompt: "Outcome", reopen_prompt: "Why reopen", cancel_prompt: "Why cancel (duplicate, mistake)",
    new_report: "New report", login_title: "Staff log in", username: "Login", password: "Password",
    wrong: "Wrong login or password", open_count: "Open", late: "Overdue", near: "Due soon",
    kiosk_desc: "Residents report at the station", board_desc: "Grid workers claim and resolve", audit_desc: "Supervisors check response times",
    tagline: "Learn of it right away, help right away",
    today: "Today", this_week: "This week", this_month: "This month", from: "From", to: "To", compound: "Compound", worker: "Worker",
    category: "Category", all: "All", export_incidents: "Incidents CSV", export_figures: "Figures CSV", export_json: "JSON",
    chart_response: "First response time (share of target)", chart_daily: "Reports per day (bars), answered in time (line)", reports: "Reports",
    response_rate: "Answered in time", resolution_rate: "Resolved", resolved_in_target: "Resolved in time", satisfaction: "Satisfied",
    breaches: "Breaches", unanswered: "Unanswered", response_time: "Response", resolution_time: "Resolution", median: "median",
    max: "max", by_worker: "By worker", by_compound: "By compound", by_category: "By category", responded_in_target: "In time",
    resolved: "Resolved", open: "Open", target: "target", ticket: "Ticket", status: "Status", deadline: "deadline",
    supervisors_only: "This page is for supervisors.", satisfied: "Satisfied", basically_satisfied: "Mostly satisfied", dissatisfied: "Dissatisfied",
    change_reported: "reported", change_claimed: "claimed", change_noted: "note", change_handed_over: "handed over", change_returned: "taken back",
    change_resolved: "resolved", change_reopened: "reopened", change_cancelled: "cancelled", change_escalated: "escalated (nobody on duty)",
    change_breached: "target passed", change_rated: "rated", rate_prompt: "Are you satisfied with the result?", thanks: "Thank you",
  },
};

let current = localStorage.getItem("hongfan.lang") === "en" ? "en" : "zh";

export function lang() { return current; }

export function t(key) { return STRINGS[current][key] ?? STRINGS.zh[key] ?? key; }

/** Fills every element with a `data-i18n` key (and `data-i18n-placeholder`). */
export function applyI18n(root = document) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
}

export function toggleLang(onChange) {
  current = current === "zh" ? "en" : "zh";
  localStorage.setItem("hongfan.lang", current);
  applyI18n();
  onChange?.();
}

/** A category's or error's text in the current language. */
export function name(zh, en) { return current === "zh" ? zh : (en || zh); }

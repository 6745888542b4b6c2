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
    admin: "办公室管理", admin_desc: "人员、自助机、排班和社区设置",
    tab_people: "人员", tab_kiosks: "自助机", tab_rota: "排班", tab_community: "社区设置", tab_history: "变更记录",
    role: "角色", role_worker: "网格员", role_building_head: "楼长", role_supervisor: "书记", role_leader: "网格长", role_kiosk: "自助机", role_system: "系统",
    name: "姓名", login_name: "登录账号", compounds: "负责小区", buildings: "负责楼栋", state: "状态", actions: "操作",
    active: "正常", disabled: "已停用", must_change: "待改密码", edit: "修改", disable: "停用", enable: "启用",
    reset_password: "重置密码", add_person: "添加人员", add: "添加", save: "保存", saved: "已保存",
    one_time_code: "一次性密码", hand_code: "请把一次性密码当面交给本人。首次登录时必须改成自己的密码。此密码只显示这一次。",
    confirm_reset: "重置后，此人现在登录的所有设备都会退出。确定重置吗？", confirm_disable: "停用后，此人将无法登录，已登录的设备会立即退出。确定停用吗？",
    leader_hint: "书记不选小区（管理全社区）；网格长选所管小区。", buildings_hint: "楼长须选所负责的楼栋。",
    kiosk_id: "编号", kiosk_name: "名称", online_now: "在线", offline_now: "离线", last_contact: "最后联系", never: "从未",
    revoked: "已停用", pair_kiosk: "配对", add_kiosk: "添加自助机", revoke: "停用",
    confirm_revoke: "停用后，这台自助机会立即断开，需重新配对才能使用。确定停用吗？",
    pairing_title: "自助机配对", pairing_help: "用自助机扫描下面的二维码，或在自助机上打开这个链接。30 分钟内有效，只能使用一次。",
    expires: "有效至", rota_for: "排班小区", weekday_0: "周一", weekday_1: "周二", weekday_2: "周三", weekday_3: "周四", weekday_4: "周五", weekday_5: "周六", weekday_6: "周日",
    shift_from: "开始", shift_to: "结束", add_shift: "添加班次", remove: "删除", otherwise: "其他时间值班（夜间、周末）",
    dates: "特殊日期（节假日、调班）", add_date: "添加日期", date: "日期", on_duty_now: "现在在岗", by_rota: "排班", by_hand: "手动",
    no_shift: "无班次", nobody: "无人", rota_saved: "排班已保存，新上报立即按新排班通知。",
    community_name: "社区名称", street_office: "街道办事处", escalation_after: "无人接单多久后上报书记",
    station: "驿站", grid: "网格", building_lines: "楼栋与单元（每行一栋，如：3号楼：1单元、2单元）",
    categories: "事项类别", category_id: "编号", name_en: "英文名", icon: "图标", private: "涉及隐私", retired: "停用",
    respond_normal: "一般·响应", resolve_normal: "一般·办结", respond_urgent: "紧急·响应", resolve_urgent: "紧急·办结",
    phrases: "常用说法（每行一条）", add_category: "添加类别", minutes: "分钟", hours: "小时", days: "天",
    community_note: "修改只对新上报的事项生效；已有事项的时限不变。类别不能删除，可以停用。", community_saved: "社区设置已保存。",
    leader_no_community: "社区设置只有书记可以修改。", when: "时间", who: "操作人", what: "内容", details: "详情", before: "修改前", after: "修改后",
    more: "加载更多", h_person_added: "添加人员", h_person_changed: "修改人员", h_kiosk_added: "添加自助机", h_kiosk_changed: "修改自助机",
    h_rota: "修改排班", h_community: "修改社区设置", change_password: "修改密码", current_password: "当前密码（一次性密码）",
    new_password: "新密码（至少 8 位）", repeat_password: "再输入一次新密码", passwords_differ: "两次输入的新密码不一样",
    must_change_title: "请先设置您自己的密码", named: "名称", admin_only: "此页面仅供书记、网格长使用。", optional: "（可不填）",
    emergency_title: "紧急情况请直接打电话", emergency_police: "报警", emergency_fire: "火警", emergency_ambulance: "急救",
    emergency_note: "在这里上报不等于报警或叫救护车。", what_happened: "发生了什么？（点一下就行）", contact_me: "请网格员联系我",
    visit_me: "请网格员上门", own_words: "自己写几句（可不填）", where: "在哪里？", public_area: "公共区域",
    room_button: "门牌号", phone_button: "联系电话", not_given: "未填", keypad_clear: "清空", keypad_delete: "删一位", keypad_ok: "确定",
    voice: "录一段话", voice_stop: "说完了", voice_recording: "正在录音", voice_saved: "已录音", photo: "拍张照片", photo_take: "拍下",
    photo_saved: "已拍照", remove_attachment: "删掉", attach: "也可以说一段话或拍张照片", attach_failed: "没能保存，请再试一次",
    no_media: "这台自助机不能录音或拍照", need_what: "请点一下发生了什么，或录一段话", need_where: "请选楼号，或选“公共区域”",
    scan_to_follow: "用手机扫一扫，随时看办理进度", slip_code: "查询码", print_slip: "打印小票", read_aloud: "读出受理号",
    late_banner: "的上报已受理：", print: "打印", dismiss: "知道了", still_here: "您还需要时间吗？", yes_more_time: "需要，继续",
    resetting: "如果没有操作，将回到首页", lookup_ticket: "请输入小票上的受理号", lookup_proof: "再输入电话号码后四位，或小票上的查询码",
    by_phone_tail: "电话后四位", by_key: "查询码", place: "地点", category_label: "事项", time_label: "时间",
    status_title: "办理进度", status_updated: "更新于", status_missing: "链接不完整或已失效，请核对小票",
    outcome: "办理结果", your_rating: "您的评价", slip_title: "红帆驿站 · 受理凭条", next: "下一步", attachments: "附件",
    voice_note: "录音", photo_note: "照片", urgency_hint: "需要马上处理的，请选“紧急”", wrong_key: "受理号与电话后四位（或查询码）对不上，请核对小票",
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
    admin: "Office", admin_desc: "People, kiosks, duty rota, community settings",
    tab_people: "People", tab_kiosks: "Kiosks", tab_rota: "Duty rota", tab_community: "Community", tab_history: "History",
    role: "Role", role_worker: "Grid worker", role_building_head: "Building head", role_supervisor: "Supervisor", role_leader: "Compound leader", role_kiosk: "Kiosk", role_system: "System",
    name: "Name", login_name: "Login", compounds: "Compounds", buildings: "Buildings", state: "State", actions: "Actions",
    active: "Active", disabled: "Disabled", must_change: "Must change password", edit: "Edit", disable: "Disable", enable: "Enable",
    reset_password: "Reset password", add_person: "Add a person", add: "Add", save: "Save", saved: "Saved",
    one_time_code: "One-time password", hand_code: "Hand this one-time password over in person. It must be changed at the first login. It is shown only now.",
    confirm_reset: "Every device this person is logged in on will be logged out. Reset?", confirm_disable: "This person will not be able to log in; open devices are logged out at once. Disable?",
    leader_hint: "A community supervisor has no compound; a compound leader has theirs.", buildings_hint: "A building head needs their buildings.",
    kiosk_id: "Id", kiosk_name: "Name", online_now: "Online", offline_now: "Offline", last_contact: "Last contact", never: "never",
    revoked: "Revoked", pair_kiosk: "Pair", add_kiosk: "Add a kiosk", revoke: "Revoke",
    confirm_revoke: "The kiosk is disconnected at once and must be paired again. Revoke?",
    pairing_title: "Pair a kiosk", pairing_help: "Scan this QR code with the kiosk, or open the link on it. Valid for 30 minutes, once.",
    expires: "Valid until", rota_for: "Compound", weekday_0: "Mon", weekday_1: "Tue", weekday_2: "Wed", weekday_3: "Thu", weekday_4: "Fri", weekday_5: "Sat", weekday_6: "Sun",
    shift_from: "From", shift_to: "To", add_shift: "Add a shift", remove: "Remove", otherwise: "On duty at other times (nights, weekends)",
    dates: "Special dates (holidays, swaps)", add_date: "Add a date", date: "Date", on_duty_now: "On duty now", by_rota: "rota", by_hand: "by hand",
    no_shift: "no shift", nobody: "nobody", rota_saved: "Rota saved: new reports alert by it at once.",
    community_name: "Community", street_office: "Street office", escalation_after: "Unclaimed reports go to supervisors after",
    station: "Station", grid: "Grid", building_lines: "Buildings and units (one building per line, e.g. 3号楼: 1单元, 2单元)",
    categories: "Categories", category_id: "Id", name_en: "English name", icon: "Icon", private: "Private", retired: "Retired",
    respond_normal: "Normal · respond", resolve_normal: "Normal · resolve", respond_urgent: "Urgent · respond", resolve_urgent: "Urgent · resolve",
    phrases: "Preset phrases (one per line)", add_category: "Add a category", minutes: "minutes", hours: "hours", days: "days",
    community_note: "Changes apply to new reports only; existing incidents keep their targets. Categories cannot be removed, only retired.", community_saved: "Community saved.",
    leader_no_community: "Only the community supervisor changes the community.", when: "When", who: "Who", what: "What", details: "Details", before: "Before", after: "After",
    more: "Load more", h_person_added: "Person added", h_person_changed: "Person changed", h_kiosk_added: "Kiosk added", h_kiosk_changed: "Kiosk changed",
    h_rota: "Rota changed", h_community: "Community changed", change_password: "Change password", current_password: "Current (one-time) password",
    new_password: "New password (8 characters or more)", repeat_password: "New password again", passwords_differ: "The new passwords differ",
    must_change_title: "Set your own password first", named: "Name", admin_only: "This page is for supervisors and compound leaders.", optional: " (optional)",
    emergency_title: "In an emergency, call", emergency_police: "Police", emergency_fire: "Fire", emergency_ambulance: "Ambulance",
    emergency_note: "A report here is not an emergency call.", what_happened: "What happened? (tap one)", contact_me: "Please call me",
    visit_me: "Please visit me", own_words: "In your own words (optional)", where: "Where?", public_area: "Public area",
    room_button: "Room", phone_button: "Phone", not_given: "not given", keypad_clear: "Clear", keypad_delete: "Delete", keypad_ok: "OK",
    voice: "Record a voice note", voice_stop: "Stop", voice_recording: "Recording", voice_saved: "Voice note saved", photo: "Take a photo", photo_take: "Take it",
    photo_saved: "Photo saved", remove_attachment: "Remove", attach: "You may also speak or take a photo", attach_failed: "Could not save it, please try again",
    no_media: "This kiosk cannot record or take photos", need_what: "Please tap what happened, or record a voice note", need_where: "Please choose a building, or Public area",
    scan_to_follow: "Scan with your phone to follow your report", slip_code: "Code", print_slip: "Print slip", read_aloud: "Read the number aloud",
    late_banner: ": report received, ticket ", print: "Print", dismiss: "OK", still_here: "Do you need more time?", yes_more_time: "Yes, continue",
    resetting: "Without a touch, the kiosk returns to the start", lookup_ticket: "Enter the ticket number on your slip", lookup_proof: "Then the last four digits of your phone, or the code on your slip",
    by_phone_tail: "Phone's last 4 digits", by_key: "Slip code", place: "Place", category_label: "Matter", time_label: "Time",
    status_title: "Progress", status_updated: "Updated", status_missing: "This link is incomplete or no longer valid; check your slip",
    outcome: "What was done", your_rating: "Your rating", slip_title: "Red Sail station · receipt", next: "Next", attachments: "Attachments",
    voice_note: "Voice note", photo_note: "Photo", urgency_hint: "Choose Urgent if it cannot wait", wrong_key: "The ticket and the phone digits (or code) do not match; check your slip",
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

/** Sets the language (the kiosk returns to Chinese for each new resident). */
export function setLang(value) {
  current = value === "en" ? "en" : "zh";
  localStorage.setItem("hongfan.lang", current);
  applyI18n();
}

export function toggleLang(onChange) {
  current = current === "zh" ? "en" : "zh";
  localStorage.setItem("hongfan.lang", current);
  applyI18n();
  onChange?.();
}

/** A category's or error's text in the current language. */
export function name(zh, en) { return current === "zh" ? zh : (en || zh); }

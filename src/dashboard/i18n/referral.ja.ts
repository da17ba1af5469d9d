/** Japanese labels of a deal page's referral answers (Partner Center's own words where it has them). */
export const referralJa = {
  'referral.answers': '紹介への回答',
  'referral.answersHelp':
    '紹介元に回答します。Partner Center では「興味あり」で評価中（7 日以内に承諾か辞退）になり、「興味なし」でスキップとしてアーカイブされます。',
  'referral.answer.accept': '承諾',
  'referral.answer.decline': '辞退',
  'referral.answer.evaluate': '興味あり',
  'referral.answer.skip': '興味なし',
  'referral.reason': '理由（任意）',
  'referral.platformState': '紹介元での状態',
  'referral.statusReason': '理由',
  'referral.done.accept': '紹介を承諾しました。',
  'referral.done.decline': '紹介を辞退しました。',
  'referral.done.evaluate': '紹介を評価中にしました。',
  'referral.done.skip': '紹介をスキップしました。',
  'referral.refused': '実行できませんでした（{code}）: {message}',
  'report.notBefore': '送信可能日時',
} as const;

// Answers of the API that more than one view reads (docs/api.md, docs/insights.md).

/** GET /v1/subscribers/{id}: a profile, MSISDN, IMSI and name masked by the caller's role. */
export interface Profile {
  subscriber_id: number;
  msisdn: string | null;
  imsi: string | null;
  name: string | null;
  partner_id: number;
  plan_id: number;
  billing_type: string;
  region: string;
  city: string;
  status: string;
  activation_date: string;
}

/** GET /v1/insights/plans: the plan advice across the base. */
export interface PlanAdvice {
  subscribers: number;
  actions: Record<string, number>;
  totals: { currency: string; saving_minor: number; revenue_minor: number }[];
  advice: { subscriber_id: number; region: string; current_plan: number; suggested_plan: number | null; action: string; saving_minor: number; currency: string; reason: string }[];
}

/** The plan advice's actions, as the views name them. */
export const kAdviceActions: Record<string, string> = {
  cheaper_plan: "Cheaper plan",
  bigger_bundle: "Bigger bundle",
  ahead_of_growth: "Ahead of growth",
  upsell: "Upsell",
  stay: "Stay",
};

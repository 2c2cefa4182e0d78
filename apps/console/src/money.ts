/** The shop's currency, as the page the api served names it (SHOP_CURRENCY); USD where it names none, as Vite's dev server's. */
const money = new Intl.NumberFormat('en', { style: 'currency', currency: document.querySelector<HTMLMetaElement>('meta[name="shop-currency"]')?.content || 'USD' });
/** Amounts are kept in the currency's minor unit (`*Cents`): 100 to a dollar or a euro, 1 to a yen. */
const minorUnits = 10 ** (money.resolvedOptions().maximumFractionDigits ?? 2);

export const formatCents = (cents: number | undefined) => (cents === undefined ? '–' : money.format(cents / minorUnits));

/** The shop's currency, as the page the api served names it (SHOP_CURRENCY); USD where it names none, as Vite's dev server's. */
const money = new Intl.NumberFormat('en', { style: 'currency', currency: document.querySelector<HTMLMetaElement>('meta[name="shop-currency"]')?.content || 'USD' });
/** Amounts are kept in the currency's minor unit (`*Cents`): 100 to a dollar or a euro, 1 to a yen. */
const minorUnits = 10 ** (money.resolvedOptions().maximumFractionDigits ?? 2);

export const formatCents = (cents: number | undefined) => (cents === undefined ? '–' : money.format(cents / minorUnits));

/**
 * What an amount box takes, as its label says: the API's `*Cents`, the currency's minor unit; for a
 * currency without one (a yen) the unit itself, so that no one types a price a hundred times over.
 */
export const amountUnit = minorUnits === 1 ? (money.formatToParts(0).find((part) => part.type === 'currency')?.value ?? money.resolvedOptions().currency) : 'cents';

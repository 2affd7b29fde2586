/**
 * Hash routes of the dashboard. Pure: `parseRoute(location.hash)` and
 * `href(route)` are inverses for every route the pages link to.
 *
 *   #/fleet (default)  #/sites[?q=…]  #/sites/<id>  #/alerts  #/alerts/<id>  #/dispatch  #/dispatch/<id>
 */

export type Route =
  | { page: 'fleet' }
  | { page: 'sites'; query: string }
  | { page: 'site'; id: string }
  | { page: 'alerts' }
  | { page: 'alert'; id: string }
  | { page: 'dispatches' }
  | { page: 'dispatch'; id: string };

export type Section = 'fleet' | 'sites' | 'alerts' | 'dispatch';

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '').replace(/^\/+/, '');
  const [pathPart = '', queryPart = ''] = raw.split('?', 2);
  const parts = pathPart.split('/').filter((p) => p !== '');
  const decode = (s: string): string | null => {
    try {
      return decodeURIComponent(s);
    } catch {
      return null;
    }
  };
  const [first, second] = parts;
  const id = second === undefined ? null : decode(second);
  switch (first) {
    case 'sites':
      if (id !== null && id !== '') return { page: 'site', id };
      return { page: 'sites', query: new URLSearchParams(queryPart).get('q') ?? '' };
    case 'alerts':
      return id !== null && id !== '' ? { page: 'alert', id } : { page: 'alerts' };
    case 'dispatch':
      return id !== null && id !== '' ? { page: 'dispatch', id } : { page: 'dispatches' };
    default:
      return { page: 'fleet' };
  }
}

export function href(route: Route): string {
  switch (route.page) {
    case 'fleet':
      return '#/fleet';
    case 'sites':
      return route.query === '' ? '#/sites' : `#/sites?${new URLSearchParams({ q: route.query }).toString()}`;
    case 'site':
      return `#/sites/${encodeURIComponent(route.id)}`;
    case 'alerts':
      return '#/alerts';
    case 'alert':
      return `#/alerts/${encodeURIComponent(route.id)}`;
    case 'dispatches':
      return '#/dispatch';
    case 'dispatch':
      return `#/dispatch/${encodeURIComponent(route.id)}`;
  }
}

/** The navigation section a route belongs to (for the header's current link). */
export function sectionOf(route: Route): Section {
  switch (route.page) {
    case 'fleet':
      return 'fleet';
    case 'sites':
    case 'site':
      return 'sites';
    case 'alerts':
    case 'alert':
      return 'alerts';
    case 'dispatches':
    case 'dispatch':
      return 'dispatch';
  }
}

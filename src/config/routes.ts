import type { z } from 'zod/v3';
import { ConfigError } from '../core/errors';
import { routePattern } from './patterns';
import { readSchema, type ReadFile } from './schema-files';
import { DEFAULT_PARTITION, placeholders, templateProblem, type TemplateKind } from './templates';
import { DEFAULT_BATCH, type BatchOptions, type NotifyOptions, type Route } from './types';
import {
  DEFAULT_CSV,
  DEFAULT_NOTIFY_OUTCOMES,
  type batchSchema,
  type notifySchema,
  type routeNotifySchema,
  type fileSchema,
  type routeSchema,
  type WriteMode,
} from './yaml-schema';

const DEFAULT_ROUTES: z.infer<typeof routeSchema>[] = [
  { match: '**/*.csv' },
  { match: '**/*.csv.gz' },
];

/**
 * The checked routes of an ingest.yaml (or the built-in ones), with the defaults applied, the
 * templates checked and the schema files read.
 */
export function buildRoutes(
  source: string,
  doc: z.infer<typeof fileSchema>,
  baseDir: string,
  readFile: ReadFile,
): Route[] {
  const defaults = doc.defaults ?? {};
  return (doc.routes ?? DEFAULT_ROUTES).map((r, index): Route => {
    const field = (name: string) => `routes[${index}].${name}`;
    const write = r.write ?? defaults.write ?? 'append';
    const pattern = routePattern(source, field('match'), r.match, write, r.partition);
    const dataset = r.dataset ?? defaults.dataset ?? 'ingest';
    const partition = r.partition ?? (write === 'partition' ? DEFAULT_PARTITION : undefined);
    const templates: [TemplateKind, string, string | undefined][] = [
      ['dataset', r.dataset === undefined ? 'defaults.dataset' : field('dataset'), dataset],
      ['table', field('table'), r.table],
      ['partition', field('partition'), partition],
    ];
    for (const [kind, where, template] of templates) {
      if (template === undefined) continue;
      for (const used of placeholders(template)) {
        if (!pattern.names.includes(used)) {
          const problem = `uses {${used}}, which match "${r.match}" does not capture`;
          throw new ConfigError(source, where, problem);
        }
      }
      const problem = templateProblem(kind, template);
      if (problem) throw new ConfigError(source, where, problem);
    }
    const schemaPath = r.schema ?? defaults.schema ?? 'auto';
    const schemaField = r.schema ? field('schema') : 'defaults.schema';
    const csv = { ...DEFAULT_CSV, ...defaults.csv, ...r.csv };
    const match =
      r.columns ?? defaults.columns ?? (csv.skipLeadingRows > 0 ? 'byName' : 'byPosition');
    if (match === 'byName' && csv.skipLeadingRows === 0) {
      const where = r.columns ? field('columns') : 'defaults.columns';
      throw new ConfigError(
        source,
        where,
        'byName needs a header row, and csv.skipLeadingRows is 0: use byPosition, or skip the header row',
      );
    }
    return {
      index,
      match: r.match,
      pattern,
      dataset,
      table: r.table,
      write,
      partition,
      schema:
        schemaPath === 'auto'
          ? 'auto'
          : readSchema(source, schemaField, baseDir, schemaPath, readFile),
      csv,
      createDisposition: r.createDisposition ?? defaults.createDisposition ?? 'CREATE_IF_NEEDED',
      timePartitioning: r.timePartitioning,
      clustering: r.clustering,
      batch: batchOptions(write, defaults.batch, r.batch),
      lineage: r.lineage ?? defaults.lineage ?? false,
      notify: notifyOptions(source, field('notify'), doc.notify, r.notify),
      columns: {
        match,
        newColumns:
          r.newColumns ?? defaults.newColumns ?? (schemaPath === 'auto' ? 'add' : 'reject'),
        relax: r.relaxColumns ?? defaults.relaxColumns ?? false,
      },
    };
  });
}

function batchOptions(
  write: WriteMode,
  defaults: z.infer<typeof batchSchema> | undefined,
  route: z.infer<typeof batchSchema> | undefined,
): BatchOptions | false {
  const chosen = route ?? defaults;
  if (write !== 'append' || chosen === false) return false;
  // A route's own batch settings refine the defaults' field by field.
  const base = defaults === false ? {} : (defaults ?? {});
  return { ...DEFAULT_BATCH, ...base, ...(route === false ? {} : route) };
}

/** The top-level `notify` with its defaults; undefined when there is none. */
export function topNotify(
  top: z.infer<typeof notifySchema> | undefined,
): NotifyOptions | undefined {
  return top && { topic: top.topic, outcomes: unique(top.outcomes ?? DEFAULT_NOTIFY_OUTCOMES) };
}

/** A route's own `notify` refines the top-level one field by field; `false` turns it off. */
function notifyOptions(
  source: string,
  where: string,
  top: z.infer<typeof notifySchema> | undefined,
  route: z.infer<typeof routeNotifySchema> | undefined,
): NotifyOptions | undefined {
  if (route === false) return undefined;
  if (route === undefined) return topNotify(top);
  const topic = route.topic ?? top?.topic;
  if (topic === undefined)
    throw new ConfigError(source, `${where}.topic`, 'is missing, and there is no top-level notify');
  return { topic, outcomes: unique(route.outcomes ?? top?.outcomes ?? DEFAULT_NOTIFY_OUTCOMES) };
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

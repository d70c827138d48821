/**
 * The drawing surface behind a {@link Figure}, for this package's drawing code only: it is not exported, so that
 * pureimage's types (and the font parser's they pull in) never reach a consumer's type check.
 */
import type * as PImage from 'pureimage';
import type { Figure } from './canvas.js';

/** The pureimage bitmap a figure is: every Figure is made by `createFigure`. */
export function surfaceOf(figure: Figure): PImage.Bitmap {
  return figure as PImage.Bitmap;
}

/**
 * Whole-tumour Dice of two label maps (every non-zero label is tumour), counted here, independently of
 * @brats/metrics, so that tests compare the product's figures with a second count.
 */
export function wholeTumourDice(prediction: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (prediction.length !== reference.length) throw new RangeError(`label maps of ${prediction.length} and ${reference.length} voxels`);
  let both = 0;
  let predicted = 0;
  let expected = 0;
  for (let index = 0; index < reference.length; index++) {
    const p = prediction[index]! > 0;
    const r = reference[index]! > 0;
    if (p) predicted++;
    if (r) expected++;
    if (p && r) both++;
  }
  return (2 * both) / (predicted + expected);
}

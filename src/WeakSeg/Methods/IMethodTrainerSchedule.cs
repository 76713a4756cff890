using WeakSeg.Training;

namespace WeakSeg.Methods;

/// <summary>
/// A capability of a method configuration: the method's own optimiser and learning-rate schedule (e.g. ToCo's poly warm-up AdamW
/// with the configuration's steps, batch and rate). Training recipes (`train`, `pipeline`) start from it instead of the generic preset
/// trainer; the user's <c>--set trainer.…</c>, <c>--config</c> and flags still win. A configuration without it keeps the
/// generic recipe's trainer options unchanged. Each preset of the configuration (<c>Paper</c>, <c>Cpu</c>) carries its own values,
/// so the schedule follows the preset.
/// </summary>
public interface IMethodTrainerSchedule
{
    /// <summary>
    /// The method's trainer options laid over <paramref name="baseOptions"/>: the fields of the schedule (steps, batch, rates,
    /// optimiser, schedule kind, decay) come from the configuration, the rest (checkpoint and logging cadence, seed, device)
    /// from <paramref name="baseOptions"/>.
    /// </summary>
    TrainerOptions ToTrainerOptions(TrainerOptions? baseOptions = null);
}

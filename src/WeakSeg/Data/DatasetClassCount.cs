namespace WeakSeg.Data;

/// <summary>
/// The one rule for the class count K of a configuration (a CAM method's model, a segmenter): K comes from the dataset the model trains
/// on. A configuration without K (0, as every preset) takes the dataset's; one that holds the same K keeps it; one that holds another K
/// (a configuration file written for VOC, <c>--set model.num_classes=20</c>) is refused with one line naming where that K came from and
/// both counts, never overwritten.
/// </summary>
public static class DatasetClassCount
{
    /// <summary>The closing words of the refusal: what to do about it.</summary>
    public const string Advice = "the class count comes from the dataset: drop num_classes from the configuration";

    /// <summary>How an error names a dataset: its root and split.</summary>
    public static string Describe(VocDataset dataset) => $"the dataset {dataset.Root} (split '{dataset.Split}')";

    /// <summary>The class count a configuration trains with: <paramref name="classes"/>, the dataset's.</summary>
    /// <param name="configured">the configuration's K; 0 when it has none</param>
    /// <param name="field">the field as the configuration's file spells it (<c>model.num_classes</c>, <c>num_classes</c>)</param>
    /// <param name="configurationSource">where <paramref name="configured"/> came from (a file, a <c>--set</c> assignment, an earlier
    /// dataset); null when unknown</param>
    /// <param name="classes">the dataset's K</param>
    /// <param name="dataSource">the dataset, as errors name it (<see cref="Describe"/>)</param>
    /// <exception cref="WeakSegException">the dataset has no foreground class, or the configuration holds another K</exception>
    public static int Bind(int configured, string field, string? configurationSource, int classes, string dataSource)
    {
        if (classes < 1) throw new WeakSegException($"{dataSource} has no foreground class (K = {classes})");
        if (configured != 0 && configured != classes)
            throw new WeakSegException((configurationSource is null ? "" : configurationSource + ": ") +
                                       $"{field} is {configured} but {dataSource} has {classes} foreground classes ({Advice})");
        return classes;
    }
}

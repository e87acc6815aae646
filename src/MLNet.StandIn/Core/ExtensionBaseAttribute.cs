namespace Microsoft.ML;

/// <summary>Base of attributes that mark a class as an extension with a contract name; the constructor is private protected.</summary>
[AttributeUsage(AttributeTargets.Class)]
public abstract class ExtensionBaseAttribute : Attribute
{
    private protected ExtensionBaseAttribute(string contractName)
    {
        ContractName = contractName;
    }

    /// <summary>The contract name the extension is registered under.</summary>
    public string ContractName { get; }
}
